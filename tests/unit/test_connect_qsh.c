/*  test_connect_qsh.c - the Connect query string hash matches Atlassian's canonical request:
    documented examples, atlassian-jwt's own cases, context paths and hostile query strings. */
#include "../../common/connect_qsh.h"
#include "unit_tests.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The canonical request for these arguments, in a static buffer ("<error>" on failure). */
static const char *s_canon(const char *method, const char *path, const char *query,
                           const char *base)
{
    static char out[CONNECT_QSH_MAX_INPUT * 3 + 64];
    if (connect_canonical_request(method, path, query, base, out, sizeof out) != 0)
        return "<error>";
    return out;
}

/* SHA-256 of text in lowercase hex, computed here independently of the module. */
static void s_sha256_hex(const char *text, char out[65])
{
    unsigned char digest[32];
    unsigned int size = 0;
    EVP_Digest(text, strlen(text), digest, &size, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", digest[i]);
}

static void test_documented_example(void **state)
{
    (void)state;
    /* "Understanding JWT for Connect apps": the not-yet-percent-encoded URL
       http://localhost:2990/path/to/service?zee_last=param&repeated=parameter 1&first=param&
       repeated=parameter 2 */
    const char *expected = "GET&/path/to/service&first=param&repeated=parameter%201,parameter%"
                           "202&zee_last=param";
    assert_string_equal(s_canon("GET", "/path/to/service",
                                "zee_last=param&repeated=parameter%201&first=param&repeated="
                                "parameter%202",
                                NULL),
                        expected);
    char qsh[CONNECT_QSH_HEX];
    assert_int_equal(connect_qsh("GET", "/path/to/service",
                                 "zee_last=param&repeated=parameter 1&first=param&repeated="
                                 "parameter 2",
                                 "", qsh),
                     0);
    /* sha256sum of the canonical request above, computed outside this code */
    assert_string_equal(qsh, "e52bb281606c3bd9ca16cfe96fe2df78f5d9ffa126f06befd750dfa10fa1a897");
    assert_int_equal(connect_qsh_from_url("get",
                                          "http://localhost:2990/path/to/service?zee_last=param&"
                                          "repeated=parameter+1&first=param&repeated=parameter+2",
                                          "http://localhost:2990", qsh),
                     0);
    assert_string_equal(qsh, "e52bb281606c3bd9ca16cfe96fe2df78f5d9ffa126f06befd750dfa10fa1a897");
    /* the empty canonical request of the site root */
    assert_int_equal(connect_qsh("GET", "/", NULL, NULL, qsh), 0);
    assert_string_equal(qsh, "c88caad15a1c1a900b8ac08aa9686f4e8184539bea1deda36e2f649430df3239");
}

static void test_atlassian_jwt_reference_cases(void **state)
{
    (void)state;
    /* the cases of atlassian-jwt's HttpRequestCanonicalizerTest */
    assert_string_equal(s_canon("GET", "/and/more", "foo=bah", NULL), "GET&/and/more&foo=bah");
    assert_string_equal(s_canon("PUT", "/simple", "foo=bah", NULL), "PUT&/simple&foo=bah");
    assert_string_equal(s_canon("POST", "/simple", "foo=humbug&foo=bah", NULL),
                        "POST&/simple&foo=bah,humbug");
    assert_string_equal(s_canon("GET", "/simple", "", NULL), "GET&/simple&");
    assert_string_equal(s_canon("GET", "/and/more/",
                                "foo=humbug&first=param1&last=param%202&foo=bah&last=param+1",
                                NULL),
                        "GET&/and/more&first=param1&foo=bah,humbug&last=param%201,param%202");
    assert_string_equal(s_canon("GET", "/some/path", "foo=bah%20bah", NULL),
                        "GET&/some/path&foo=bah%20bah");
    assert_string_equal(s_canon("GET", "/some/path", "foo=bah%2Bbah", NULL),
                        "GET&/some/path&foo=bah%2Bbah");
    assert_string_equal(s_canon("GET", "/some/path&a=b", NULL, NULL), "GET&/some/path%26a=b&");
    assert_string_equal(s_canon("GET", "/some/path&a=b", "x=y", NULL), "GET&/some/path%26a=b&x=y");
    /* '&' in the path does not collide with a query parameter */
    char *with_amp = strdup(s_canon("GET", "/rest/api/2/project&a=b", "x=y", NULL));
    assert_string_not_equal(with_amp, s_canon("GET", "/rest/api/2/project", "a=b&x=y", NULL));
    free(with_amp);
}

static void test_plus_decodes_form_style_as_space(void **state)
{
    (void)state;
    /* atlassian-jwt reads parameters form-decoded: '+' is a space; a plus is sent as %2B */
    assert_string_equal(s_canon("GET", "/p", "q=a+b", NULL), "GET&/p&q=a%20b");
    assert_string_equal(s_canon("GET", "/p", "q=a%2Bb", NULL), "GET&/p&q=a%2Bb");
    assert_string_equal(s_canon("GET", "/p", "a+b=1", NULL), "GET&/p&a%20b=1");
    /* the path is not decoded at all */
    assert_string_equal(s_canon("GET", "/a+b/c%20d", NULL, NULL), "GET&/a+b/c%20d&");
}

static void test_context_path_removed(void **state)
{
    (void)state;
    assert_string_equal(s_canon("GET", "/jira/rest/api/2/issue/PROJ-1", "expand=names", "/jira"),
                        "GET&/rest/api/2/issue/PROJ-1&expand=names");
    assert_string_equal(s_canon("GET", "/jira/rest/api/2/issue", NULL, "/jira/"),
                        "GET&/rest/api/2/issue&");
    assert_string_equal(s_canon("GET", "/jira", NULL, "/jira"), "GET&/&");
    assert_string_equal(s_canon("GET", "/jira/", NULL, "/jira"), "GET&/&");
    /* only at a segment boundary, and only from the front */
    assert_string_equal(s_canon("GET", "/jirax/rest", NULL, "/jira"), "GET&/jirax/rest&");
    assert_string_equal(s_canon("GET", "/x/jira/rest", NULL, "/jira"), "GET&/x/jira/rest&");
    assert_string_equal(s_canon("GET", "/rest", NULL, "/"), "GET&/rest&");
    /* from absolute URLs: the base URL's path is the context path */
    char qsh[CONNECT_QSH_HEX], expected[65];
    s_sha256_hex("GET&/rest/api/2/issue&a=1&b=2", expected);
    assert_int_equal(connect_qsh_from_url("GET",
                                          "https://example.com:8443/jira/rest/api/2/issue/?b=2&a=1"
                                          "#comment-1",
                                          "https://example.com:8443/jira", qsh),
                     0);
    assert_string_equal(qsh, expected);
    assert_int_equal(connect_qsh_from_url("GET", "/jira/rest/api/2/issue?b=2&a=1", "/jira", qsh),
                     0);
    assert_string_equal(qsh, expected);
    assert_int_equal(connect_qsh("GET", "/jira/rest/api/2/issue", "b=2&a=1", "/jira", qsh), 0);
    assert_string_equal(qsh, expected);
    /* a site without a context path */
    s_sha256_hex("POST&/installed&", expected);
    assert_int_equal(connect_qsh_from_url("POST", "https://parley.example/installed",
                                          "https://parley.example", qsh),
                     0);
    assert_string_equal(qsh, expected);
    s_sha256_hex("GET&/&x=1", expected);
    assert_int_equal(
        connect_qsh_from_url("GET", "https://parley.example?x=1", "https://parley.example/", qsh),
        0);
    assert_string_equal(qsh, expected);
    assert_int_equal(connect_qsh_from_url("GET", "https://parley.example/?x=1", NULL, qsh), 0);
    assert_string_equal(qsh, expected);
}

static void test_repeated_keys_sorted_and_jwt_dropped(void **state)
{
    (void)state;
    assert_string_equal(s_canon("GET", "/p", "k=3&k=1&k=2&a=z", NULL), "GET&/p&a=z&k=1,2,3");
    /* equal values stay */
    assert_string_equal(s_canon("GET", "/p", "k=1&k=1", NULL), "GET&/p&k=1,1");
    /* jwt goes, however spelled, but only that name */
    assert_string_equal(s_canon("GET", "/p", "jwt=aaa.bbb.ccc&b=2&jwt2=x&JWT=y&j%77t=z", NULL),
                        "GET&/p&JWT=y&b=2&jwt2=x");
    assert_string_equal(s_canon("GET", "/p", "jwt=aaa.bbb.ccc", NULL), "GET&/p&");
    /* names sort by code point of their encoded form: upper case first, and "%C3%A9" before
       "~" although é is above ~ */
    assert_string_equal(s_canon("GET", "/p", "b=1&B=2&a=3&A=4", NULL), "GET&/p&A=4&B=2&a=3&b=1");
    assert_string_equal(s_canon("GET", "/p", "~=1&%C3%A9=2", NULL), "GET&/p&%C3%A9=2&~=1");
    assert_string_equal(s_canon("GET", "/p", "a-b=1&a+b=2&a=3", NULL), "GET&/p&a=3&a%20b=2&a-b=1");
    /* keys without '=', empty values, empty pieces and empty names */
    assert_string_equal(s_canon("GET", "/p", "flag&x=&&=v&y=1", NULL), "GET&/p&flag=&x=&y=1");
    assert_string_equal(s_canon("GET", "/p", "&&&", NULL), "GET&/p&");
    /* '=' inside a value */
    assert_string_equal(s_canon("GET", "/p", "jql=a=b", NULL), "GET&/p&jql=a%3Db");
}

static void test_encoding_is_rfc3986(void **state)
{
    (void)state;
    assert_string_equal(s_canon("GET", "/p", "q=a b*c~d-e.f_g", NULL),
                        "GET&/p&q=a%20b%2Ac~d-e.f_g");
    assert_string_equal(s_canon("GET", "/p", "q=%7e%2a%2F%3a", NULL), "GET&/p&q=~%2A%2F%3A");
    assert_string_equal(s_canon("GET", "/p", "q=!'()[]@$,;:/?", NULL),
                        "GET&/p&q=%21%27%28%29%5B%5D%40%24%2C%3B%3A%2F%3F");
    /* UTF-8, percent-encoded in either case or raw, comes out as uppercase escapes */
    assert_string_equal(s_canon("GET", "/p", "q=%c3%a9t%C3%A9", NULL), "GET&/p&q=%C3%A9t%C3%A9");
    assert_string_equal(s_canon("GET", "/p", "q=\xc3\xa9t\xc3\xa9", NULL),
                        "GET&/p&q=%C3%A9t%C3%A9");
    assert_string_equal(s_canon("GET", "/p", "%E2%9C%93=%F0%9F%98%80", NULL),
                        "GET&/p&%E2%9C%93=%F0%9F%98%80");
    /* a decoded NUL or '&' is data, not structure */
    assert_string_equal(s_canon("GET", "/p", "a=%00&b=%26c%3Dd", NULL), "GET&/p&a=%00&b=%26c%3Dd");
    /* a realistic Jira search */
    assert_string_equal(
        s_canon("GET", "/rest/api/2/search",
                "jql=project%20%3D%20SUP%20ORDER%20BY%20created&"
                "maxResults=50&fields=summary,status",
                NULL),
        "GET&/rest/api/2/search&fields=summary%2Cstatus&jql=project%20%3D%20SUP%20ORDER%20BY%"
        "20created&maxResults=50");
}

static void test_paths_and_methods(void **state)
{
    (void)state;
    assert_string_equal(s_canon("get", "/rest/", NULL, NULL), "GET&/rest&");
    assert_string_equal(s_canon("Post", "/", NULL, NULL), "POST&/&");
    assert_string_equal(s_canon("GET", "", NULL, NULL), "GET&/&");
    assert_string_equal(s_canon("GET", "rest/api", NULL, NULL), "GET&/rest/api&");
    assert_string_equal(s_canon("GET", "//", NULL, NULL), "GET&/&");
    assert_string_equal(s_canon("GET", "/a//", NULL, NULL), "GET&/a/&");
    assert_string_equal(s_canon("GET", "/p", "", NULL), "GET&/p&");
    /* methods are 1 to 16 letters */
    assert_string_equal(s_canon("", "/p", NULL, NULL), "<error>");
    assert_string_equal(s_canon("G ET", "/p", NULL, NULL), "<error>");
    assert_string_equal(s_canon("GET&", "/p", NULL, NULL), "<error>");
    assert_string_equal(s_canon("ABCDEFGHIJKLMNOPQ", "/p", NULL, NULL), "<error>");
    assert_string_equal(s_canon("ABCDEFGHIJKLMNOP", "/p", NULL, NULL), "ABCDEFGHIJKLMNOP&/p&");
    assert_string_equal(s_canon(NULL, "/p", NULL, NULL), "<error>");
    assert_string_equal(s_canon("GET", NULL, NULL, NULL), "<error>");
}

static void test_malformed_or_oversize_input_refused(void **state)
{
    (void)state;
    const char *bad[] = {"a=%zz", "a=%", "a=%4", "%zz=1", "a=1&b=%g0", "a=%%41", "%=1"};
    char qsh[CONNECT_QSH_HEX] = "x";
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_string_equal(s_canon("GET", "/p", bad[i], NULL), "<error>");
        assert_int_equal(connect_qsh("GET", "/p", bad[i], NULL, qsh), -1);
        assert_string_equal(qsh, "");
    }
    /* path + query at the limit passes, one byte more does not */
    char *query = malloc(CONNECT_QSH_MAX_INPUT + 2);
    memset(query, 'a', CONNECT_QSH_MAX_INPUT + 1);
    query[0] = 'q';
    query[1] = '=';
    query[CONNECT_QSH_MAX_INPUT - 2] = '\0'; /* "/p" + query == limit */
    assert_int_equal(connect_qsh("GET", "/p", query, NULL, qsh), 0);
    query[CONNECT_QSH_MAX_INPUT - 2] = 'a';
    query[CONNECT_QSH_MAX_INPUT - 1] = '\0';
    assert_int_equal(connect_qsh("GET", "/p", query, NULL, qsh), -1);
    char *url = malloc(CONNECT_QSH_MAX_INPUT + 64);
    snprintf(url, CONNECT_QSH_MAX_INPUT + 64, "https://h/p?%s", query);
    assert_int_equal(connect_qsh_from_url("GET", url, NULL, qsh), -1);
    free(url);
    /* the worst case for the output: every byte becomes three */
    for (size_t i = 2; i < CONNECT_QSH_MAX_INPUT - 2; i++)
        query[i] = '*';
    query[CONNECT_QSH_MAX_INPUT - 2] = '\0';
    assert_int_equal(connect_qsh("GET", "/p", query, NULL, qsh), 0);
    assert_int_equal(strlen(s_canon("GET", "/p", query, NULL)),
                     strlen("GET&/p&q=") + 3 * (CONNECT_QSH_MAX_INPUT - 4));
    /* worse still: one parameter without '=' gains the '=' on top, and a path without its
       leading '/' gains the '/' (found by fuzzing: the buffer was one byte short) */
    assert_string_equal(s_canon("GET", "", "!", NULL), "GET&/&%21=");
    assert_int_equal(connect_qsh("GET", "", "!", NULL, qsh), 0);
    memset(query, '*', CONNECT_QSH_MAX_INPUT - 1);
    query[CONNECT_QSH_MAX_INPUT - 1] = '\0';
    assert_int_equal(connect_qsh("GET", "p", query, NULL, qsh), 0);
    assert_int_equal(strlen(s_canon("GET", "p", query, NULL)),
                     strlen("GET&/p&") + 3 * (CONNECT_QSH_MAX_INPUT - 1) + 1);
    free(query);
    /* an output buffer that is too small */
    char tiny[8] = "zzz";
    assert_int_equal(connect_canonical_request("GET", "/path", "a=1", NULL, tiny, sizeof tiny), -1);
    assert_string_equal(tiny, "");
    assert_int_equal(connect_canonical_request("GET", "/p", NULL, NULL, tiny, sizeof tiny), 0);
    assert_string_equal(tiny, "GET&/p&");
    assert_int_equal(connect_qsh_from_url("GET", NULL, NULL, qsh), -1);
}

int test_connect_qsh_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_documented_example),
        cmocka_unit_test(test_atlassian_jwt_reference_cases),
        cmocka_unit_test(test_plus_decodes_form_style_as_space),
        cmocka_unit_test(test_context_path_removed),
        cmocka_unit_test(test_repeated_keys_sorted_and_jwt_dropped),
        cmocka_unit_test(test_encoding_is_rfc3986),
        cmocka_unit_test(test_paths_and_methods),
        cmocka_unit_test(test_malformed_or_oversize_input_refused),
    };
    return cmocka_run_group_tests_name("connect_qsh", tests, NULL, NULL);
}
