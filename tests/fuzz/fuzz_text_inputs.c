/*  fuzz_text_inputs.c - libFuzzer target: the text parsers that take what the internet sends.

      first byte % 7 == 0  the rest as a JWT: jwt_decode, jwt_verify_hs256 under a fixed key,
                           jwt_check_time on whatever claims decode (a customer's token comes
                           from any website visitor)
                      1    the rest as JSON, then adf_to_text on it, and adf_from_text on the
                           raw bytes (comments and webhooks from Jira)
                      2    the rest split at the first NUL into a URL and a base URL, through
                           connect_qsh_from_url (the qsh claim of Jira's requests)
                      3    the rest as base64url: jwt_base64url_decode, then encode again and
                           compare (one encoding per byte string)
                      4    the rest as a schedule (schedule_new against the system's tz
                           database; when it parses: format, is-open and next change) and as
                           a zone name alone (a customer's widget sends its zone)
                      5    the rest as a chat text through json_writer (the gateway's frames):
                           it must accept exactly what jansson accepts as UTF-8, and jansson
                           must read back the same bytes (no JSON injection into frames)
                      6    the rest as a sealed secret from the store: secrets_base64_decode,
                           secrets_open under a fixed key (must refuse what it did not seal)

    Any crash, leak, overread or undefined behaviour is a finding. */
#include "../../common/adf.h"
#include "../../common/connect_qsh.h"
#include "../../common/json_writer.h"
#include "../../common/jwt.h"
#include "../../common/schedule.h"
#include "../../common/secrets.h"

#include <stdlib.h>
#include <string.h>

static void s_jwt(const char *text, size_t size)
{
    (void)size; /* a token is a C string */
    char error[256];
    json_t *header = NULL, *claims = NULL;
    if (jwt_decode(text, &header, &claims, error, sizeof error) == 0) {
        jwt_check_time(claims, 1795000000, 60, true, error, sizeof error);
        json_decref(header);
        json_decref(claims);
    }
    static const uint8_t key[] = "the project's secret key";
    claims = NULL;
    if (jwt_verify_hs256(text, key, sizeof key - 1, &claims, error, sizeof error) == 0)
        json_decref(claims);
}

static void s_adf(const char *data, size_t size)
{
    json_t *doc = json_loadb(data, size, JSON_DECODE_ANY, NULL);
    if (doc) {
        free(adf_to_text(doc, 4096));
        json_decref(doc);
    }
    json_t *made = adf_from_text(data, size);
    if (made) {
        char *back = adf_to_text(made, ADF_TEXT_MAX + 1);
        if (!back)
            abort(); /* a document adf_from_text made must read back */
        free(back);
        json_decref(made);
    }
}

static void s_qsh(const char *text, size_t size)
{
    const char *base = memchr(text, '\0', size) ? text + strlen(text) + 1 : "";
    if (base > text + size)
        base = "";
    char out[CONNECT_QSH_HEX];
    connect_qsh_from_url("GET", text, base, out);
    connect_qsh_from_url("POST", text, NULL, out);
}

static void s_base64url(const char *text, size_t size)
{
    size_t decoded_size;
    uint8_t *decoded = jwt_base64url_decode(text, size, &decoded_size);
    if (!decoded)
        return;
    char *again = jwt_base64url_encode(decoded, decoded_size);
    if (!again || strlen(again) != size || memcmp(again, text, size) != 0)
        abort(); /* strict decoding: the text was the one encoding of these bytes */
    free(again);
    free(decoded);
}

static void s_schedule(const char *text, size_t size)
{
    (void)size; /* schedules and zone names are C strings */
    static schedule_zones_t *zones; /* kept across inputs, as the presence worker keeps it */
    char error[256];
    if (!zones && !(zones = schedule_zones_new(NULL, error, sizeof error)))
        return;
    schedule_t *schedule = schedule_new(zones, text, error, sizeof error);
    if (schedule) {
        char *formatted = schedule_format(schedule);
        schedule_t *again = formatted ? schedule_new(zones, formatted, error, sizeof error) : NULL;
        if (!again)
            abort(); /* what schedule_format writes must parse */
        time_t now = 1795000000;
        if (schedule_is_open(schedule, now) != schedule_is_open(again, now) ||
            schedule_next_change(schedule, now) != schedule_next_change(again, now))
            abort(); /* and mean the same */
        schedule_is_open_in_zone(schedule, "Asia/Kolkata", now);
        schedule_destroy(&again);
        free(formatted);
        schedule_destroy(&schedule);
    }
    schedule_zones_require(zones, text, error, sizeof error);
}

static void s_json_writer(const char *text, size_t size)
{
    static json_writer_t writer;
    json_writer_begin(&writer);
    json_writer_string(&writer, "type", "message", 7);
    json_writer_string(&writer, "text", text, size);
    json_writer_int(&writer, "n", -1);
    bool written = json_writer_end(&writer) == 0;
    json_t *expected = json_stringn(text, size); /* NULL when jansson refuses the bytes */
    if (written != (expected != NULL))
        abort(); /* json_writer and jansson disagree on what is a valid string */
    if (written) {
        json_t *parsed = json_loadb(writer.data, writer.length,
                                    JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
        json_t *member = json_object_get(parsed, "text");
        if (!parsed || json_object_size(parsed) != 3 || !json_equal(member, expected))
            abort(); /* the frame does not say what was written into it */
        json_decref(parsed);
    }
    json_decref(expected);
}

static void s_sealed(const char *text, size_t size)
{
    static secrets_t *secrets;
    char error[128];
    if (!secrets &&
        !(secrets = secrets_new("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", error,
                                sizeof error)))
        return;
    size_t sealed_size, plain_size;
    uint8_t *sealed = secrets_base64_decode(text, &sealed_size);
    if (sealed) {
        uint8_t *plain = secrets_open(secrets, "TENANT#t|META|shared_secret", sealed, sealed_size,
                                      &plain_size);
        if (plain)
            abort(); /* forged: nobody sealed this under the key */
        free(sealed);
    }
    uint8_t *plain = secrets_open(secrets, "TENANT#t|META|shared_secret", (const uint8_t *)text,
                                  size, &plain_size);
    if (plain)
        abort();
}

/* The targets, by the input's first byte (see the top of the file). */
static void (*const s_targets[])(const char *text, size_t size) = {
    s_jwt, s_adf, s_qsh, s_base64url, s_schedule, s_json_writer, s_sealed,
};
#define S_TARGETS (sizeof s_targets / sizeof s_targets[0])

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    /* a NUL-terminated copy, so the string parsers see exactly these bytes */
    char *text = malloc(size);
    if (!text)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    s_targets[data[0] % S_TARGETS](text, size - 1);
    free(text);
    return 0;
}
