/*  bench_http.c - `parley-bench http-post`: the Jira sandbox's own response time as a client
    sees it, without Parley: the same comment POST the jira worker makes (the same JSON body,
    Basic auth, one keep-alive connection), one at a time.

      parley-bench http-post --endpoint URL --messages N [--jobs-key user:token]

    URL is the comment collection (…/rest/api/3/issue/KEY/comment); --jobs-key carries the
    Basic credentials. Sends 20 unmeasured requests, then N, and prints `answers`, `errors` and
    `latencies_us: a,b,...` like jira-client's overhead mode. Blocking libcurl easy handle. */
#include "bench.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_WARM 20
#define S_BODY                                                                                   \
    "{\"body\":{\"type\":\"doc\",\"version\":1,\"content\":[{\"type\":\"paragraph\","            \
    "\"content\":[{\"type\":\"text\",\"text\":\"Hello, this is a benchmark message of typical "  \
    "chat length. Thanks!\"}]}]},\"properties\":[{\"key\":\"parley\",\"value\":{\"message\":"    \
    "\"direct\",\"author_kind\":\"customer\",\"author\":\"bench\"}}]}"

static size_t s_discard(char *data, size_t size, size_t count, void *arg)
{
    (void)data;
    (void)arg;
    return size * count;
}

int bench_http_post(const bench_options_t *options)
{
    if (!options->endpoint || options->messages <= 0) {
        fprintf(stderr, "http-post needs --endpoint and --messages\n");
        return 1;
    }
    int64_t *latencies = calloc((size_t)options->messages, sizeof *latencies);
    CURL *curl = curl_easy_init();
    struct curl_slist *headers = NULL;
    headers = curl_slist_append(headers, "Content-Type: application/json");
    headers = curl_slist_append(headers, "Accept: application/json");
    headers = curl_slist_append(headers, "Expect:");
    if (!latencies || !curl || !headers) {
        free(latencies);
        curl_easy_cleanup(curl);
        curl_slist_free_all(headers);
        return 1;
    }
    curl_easy_setopt(curl, CURLOPT_URL, options->endpoint);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, S_BODY);
    curl_easy_setopt(curl, CURLOPT_USERPWD, options->jobs_key);
    curl_easy_setopt(curl, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, s_discard);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)options->timeout_ms);
    int64_t errors = 0, recorded = 0;
    for (int64_t i = 0; i < S_WARM + options->messages; i++) {
        int64_t start = bench_now_us();
        long status = 0;
        CURLcode rc = curl_easy_perform(curl);
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        int64_t took = bench_now_us() - start;
        if (rc != CURLE_OK || status != 201)
            errors++;
        else if (i >= S_WARM)
            latencies[recorded++] = took;
    }
    printf("answers: %lld\nerrors: %lld\nlatencies_us: ",
           (long long)(S_WARM + options->messages), (long long)errors);
    for (int64_t i = 0; i < recorded; i++)
        printf("%s%lld", i ? "," : "", (long long)latencies[i]);
    printf("\n");
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    free(latencies);
    return errors ? 1 : 0;
}
