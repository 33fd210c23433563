// serve.js - starts one of the local stores, dynalite (DynamoDB API) or s3rver (S3 API), as
// PID 1 of its container: `node serve.js dynalite|s3rver [their options]`. It only adds what
// PID 1 needs: an exit with status 0 on SIGTERM or SIGINT (a PID 1 without handlers ignores
// them, and docker-compose would wait out stop_grace_period, then SIGKILL it). Neither store
// buffers writes it has acknowledged, so exiting at once loses nothing.
'use strict'

const servers = { dynalite: 'dynalite/cli.js', s3rver: 's3rver/bin/s3rver.js' }
const name = process.argv[2]
if (!Object.hasOwn(servers, name)) {
  console.error(`usage: node serve.js ${Object.keys(servers).join('|')} [options]`)
  process.exit(2)
}
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0))
// The server reads its options from process.argv as if it had been started by itself.
process.argv.splice(1, 2, require.resolve(servers[name]))
require(servers[name])
