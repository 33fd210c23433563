/*  test_adf.c - chat text survives the trip through ADF; what Jira users write reads as plain
    text; hostile documents (deep, odd, long) neither crash nor split characters. */
#include "../../common/adf.h"
#include "unit_tests.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* adf_to_text(adf_from_text(text)) as a new string, or NULL when adf_from_text refuses. */
static char *s_round_trip(const char *text, size_t length)
{
    json_t *doc = adf_from_text(text, length);
    if (!doc)
        return NULL;
    char *back = adf_to_text(doc, ADF_TEXT_MAX);
    json_decref(doc);
    assert_non_null(back);
    return back;
}

static void s_assert_compact(json_t *json, const char *expected)
{
    char *text = json_dumps(json, JSON_COMPACT);
    assert_string_equal(text, expected);
    free(text);
}

static char *s_text_of(const char *adf_json, size_t max_bytes)
{
    json_error_t error;
    json_t *doc = json_loads(adf_json, 0, &error);
    if (!doc)
        fail_msg("bad test JSON: %s", error.text);
    char *text = adf_to_text(doc, max_bytes);
    json_decref(doc);
    return text;
}

static void test_paragraphs_and_hard_breaks(void **state)
{
    (void)state;
    json_t *doc = adf_from_text("a\nb\n\nc", 6);
    s_assert_compact(doc, "{\"type\":\"doc\",\"version\":1,\"content\":["
                          "{\"type\":\"paragraph\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
                          "{\"type\":\"hardBreak\"},{\"type\":\"text\",\"text\":\"b\"}]},"
                          "{\"type\":\"paragraph\",\"content\":[{\"type\":\"text\",\"text\":\"c\"}"
                          "]}]}");
    json_decref(doc);
    doc = adf_from_text("hello", 5);
    s_assert_compact(doc, "{\"type\":\"doc\",\"version\":1,\"content\":[{\"type\":\"paragraph\","
                          "\"content\":[{\"type\":\"text\",\"text\":\"hello\"}]}]}");
    json_decref(doc);
}

static void test_round_trips(void **state)
{
    (void)state;
    const char *texts[] = {
        "hello",
        "a\nb",
        "a\n\nb",
        "line 1\nline 2\n\npara 2 line 1\npara 2 line 2\n\npara 3",
        "  indented\n\ttabbed\ntrailing space ",
        " \n\n \nx",
        "h\xc3\xa9llo w\xc3\xb6rld \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
        "\xf0\x9f\x91\x8b hi \xf0\x9f\x8e\x89\n\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9",
        "lone\rcarriage return",
        "{\"type\":\"doc\"} <b>not html</b> & \\n",
        "- not a list\n1. not numbered",
    };
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        char *back = s_round_trip(texts[i], strlen(texts[i]));
        assert_non_null(back);
        assert_string_equal(back, texts[i]);
        free(back);
    }
}

/* The documented normalisation: CRLF to LF, outer newlines dropped, 2+ newlines are one
   paragraph break. */
static char *s_normalise(const char *text, size_t length)
{
    char *out = malloc(length + 1);
    size_t n = 0;
    for (size_t i = 0; i < length; i++) {
        if (text[i] == '\r' && i + 1 < length && text[i + 1] == '\n')
            continue;
        out[n++] = text[i];
    }
    size_t start = 0, end = n, m = 0;
    while (start < end && out[start] == '\n')
        start++;
    while (end > start && out[end - 1] == '\n')
        end--;
    for (size_t i = start; i < end; i++) {
        if (out[i] == '\n' && m >= 2 && out[m - 1] == '\n' && out[m - 2] == '\n')
            continue;
        out[m++] = out[i];
    }
    out[m] = '\0';
    return out;
}

static void test_round_trip_property_on_generated_text(void **state)
{
    (void)state;
    const char *pieces[] = {"a",  "b",    " ",  "\t",       "\n",
                            "\n", "\r\n", "\r", "\xc3\xa9", "\xf0\x9f\x98\x80"};
    uint32_t seed = 12345;
    char text[256];
    int checked = 0;
    for (int round = 0; round < 5000; round++) {
        size_t n = 0;
        seed = seed * 1103515245u + 12345u;
        int count = (int)(seed >> 16) % 24;
        for (int k = 0; k < count; k++) {
            seed = seed * 1103515245u + 12345u;
            const char *piece = pieces[(seed >> 16) % 10];
            memcpy(text + n, piece, strlen(piece));
            n += strlen(piece);
        }
        text[n] = '\0';
        char *expected = s_normalise(text, n);
        char *back = s_round_trip(text, n);
        if (strspn(expected, " \t\r\n") == strlen(expected)) {
            assert_null(back); /* empty or only white space */
        } else {
            assert_non_null(back);
            assert_string_equal(back, expected);
            checked++;
        }
        free(back);
        free(expected);
    }
    assert_true(checked > 3000);
}

static void test_crlf_and_blank_line_normalisation(void **state)
{
    (void)state;
    char *back = s_round_trip("a\r\nb\r\n\r\nc\r\n", strlen("a\r\nb\r\n\r\nc\r\n"));
    assert_string_equal(back, "a\nb\n\nc");
    free(back);
    back = s_round_trip("\n\n\na\n\n\n\nb\n\n", strlen("\n\n\na\n\n\n\nb\n\n"));
    assert_string_equal(back, "a\n\nb");
    free(back);
    json_t *one = adf_from_text("x\r\n\r\n\r\ny", 8), *two = adf_from_text("x\n\ny", 4);
    assert_true(json_equal(one, two));
    json_decref(one);
    json_decref(two);
}

static void test_empty_invalid_and_oversize_text_refused(void **state)
{
    (void)state;
    assert_null(adf_from_text("", 0));
    assert_null(adf_from_text(NULL, 3));
    assert_null(adf_from_text(" \t\r\n \n", 6));
    assert_null(adf_from_text("\n\n", 2));
    const char *invalid[] = {
        "\xc0\x80",         /* overlong NUL */
        "\xe0\x80\xaf",     /* overlong '/' */
        "\xed\xa0\x80",     /* surrogate */
        "\xf4\x90\x80\x80", /* above U+10FFFF */
        "\xf5\x80\x80\x80", "\xff", "\x80", "abc\xe2\x82", "\xe2\x28\xa1",
    };
    for (size_t i = 0; i < sizeof invalid / sizeof *invalid; i++)
        assert_null(adf_from_text(invalid[i], strlen(invalid[i])));
    assert_null(adf_from_text("a\0b", 3)); /* NUL inside */
    /* a length that stops inside a character */
    assert_null(adf_from_text("\xc3\xa9", 1));

    /* ADF_TEXT_MAX bytes pass, one more does not; multibyte text counts bytes */
    char *big = malloc(ADF_TEXT_MAX + 2);
    memset(big, 'x', ADF_TEXT_MAX + 1);
    big[ADF_TEXT_MAX + 1] = '\0';
    char *back = s_round_trip(big, ADF_TEXT_MAX);
    assert_non_null(back);
    assert_int_equal(strlen(back), ADF_TEXT_MAX);
    free(back);
    assert_null(adf_from_text(big, ADF_TEXT_MAX + 1));
    for (size_t i = 0; i + 2 <= ADF_TEXT_MAX; i += 2)
        memcpy(big + i, "\xc3\xa9", 2);
    big[ADF_TEXT_MAX - 1] = 'x'; /* 32767 is odd: one ASCII byte at the end */
    back = s_round_trip(big, ADF_TEXT_MAX);
    assert_non_null(back);
    assert_memory_equal(back, big, ADF_TEXT_MAX);
    free(back);
    big[ADF_TEXT_MAX - 1] = '\xc3'; /* cut character at the end */
    assert_null(adf_from_text(big, ADF_TEXT_MAX));
    free(big);
}

static void test_real_jira_comment(void **state)
{
    (void)state;
    const char *adf =
        "{\"version\":1,\"type\":\"doc\",\"content\":["
        "{\"type\":\"paragraph\",\"content\":["
        "{\"type\":\"mention\",\"attrs\":{\"id\":\"5b10a2844c20165700ede21g\",\"text\":\"@Ada "
        "Lovelace\",\"accessLevel\":\"\"}},"
        "{\"type\":\"text\",\"text\":\" thanks for the report. Please try:\"}]},"
        "{\"type\":\"orderedList\",\"attrs\":{\"order\":1},\"content\":["
        "{\"type\":\"listItem\",\"content\":[{\"type\":\"paragraph\",\"content\":[{\"type\":"
        "\"text\",\"text\":\"Clear the cache\"}]}]},"
        "{\"type\":\"listItem\",\"content\":[{\"type\":\"paragraph\",\"content\":[{\"type\":"
        "\"text\",\"text\":\"Run the command:\"}]},"
        "{\"type\":\"bulletList\",\"content\":[{\"type\":\"listItem\",\"content\":[{\"type\":"
        "\"paragraph\",\"content\":[{\"type\":\"text\",\"text\":\"as admin\",\"marks\":[{"
        "\"type\":\"strong\"}]}]}]}]}]}]},"
        "{\"type\":\"codeBlock\",\"attrs\":{\"language\":\"bash\"},\"content\":[{\"type\":"
        "\"text\",\"text\":\"parleyctl cache clear --all\\nparleyctl status\"}]},"
        "{\"type\":\"paragraph\",\"content\":["
        "{\"type\":\"text\",\"text\":\"See \"},"
        "{\"type\":\"text\",\"text\":\"the runbook\",\"marks\":[{\"type\":\"em\"},{\"type\":"
        "\"link\",\"attrs\":{\"href\":\"https://example.atlassian.net/wiki/x/123\"}}]},"
        "{\"type\":\"text\",\"text\":\" or \"},"
        "{\"type\":\"inlineCard\",\"attrs\":{\"url\":\"https://example.atlassian.net/browse/"
        "SUP-42\"}},"
        "{\"type\":\"text\",\"text\":\" \"},"
        "{\"type\":\"emoji\",\"attrs\":{\"shortName\":\":smile:\",\"id\":\"1f604\",\"text\":"
        "\"\xf0\x9f\x98\x84\"}},"
        "{\"type\":\"text\",\"text\":\" \"},"
        "{\"type\":\"text\",\"text\":\"https://x.example\",\"marks\":[{\"type\":\"link\","
        "\"attrs\":{\"href\":\"https://x.example\"}}]}]},"
        "{\"type\":\"mediaSingle\",\"attrs\":{\"layout\":\"center\"},\"content\":[{\"type\":"
        "\"media\",\"attrs\":{\"id\":\"abc\",\"type\":\"file\",\"collection\":\"jira-1\"}}]},"
        "{\"type\":\"table\",\"content\":["
        "{\"type\":\"tableRow\",\"content\":[{\"type\":\"tableHeader\",\"content\":[{\"type\":"
        "\"paragraph\",\"content\":[{\"type\":\"text\",\"text\":\"Env\"}]}]},{\"type\":"
        "\"tableHeader\",\"content\":[{\"type\":\"paragraph\",\"content\":[{\"type\":\"text\","
        "\"text\":\"Status\"}]}]}]},"
        "{\"type\":\"tableRow\",\"content\":[{\"type\":\"tableCell\",\"content\":[{\"type\":"
        "\"paragraph\",\"content\":[{\"type\":\"text\",\"text\":\"prod\"}]}]},{\"type\":"
        "\"tableCell\",\"content\":[{\"type\":\"paragraph\",\"content\":[{\"type\":\"status\","
        "\"attrs\":{\"text\":\"OK\",\"color\":\"green\"}}]}]}]}]},"
        "{\"type\":\"heading\",\"attrs\":{\"level\":3},\"content\":[{\"type\":\"text\",\"text\":"
        "\"Notes\"}]},"
        "{\"type\":\"blockquote\",\"content\":[{\"type\":\"paragraph\",\"content\":[{\"type\":"
        "\"text\",\"text\":\"quoted\"}]}]},"
        "{\"type\":\"panel\",\"attrs\":{\"panelType\":\"info\"},\"content\":[{\"type\":"
        "\"paragraph\",\"content\":[{\"type\":\"text\",\"text\":\"in a panel\"}]}]},"
        "{\"type\":\"paragraph\",\"content\":[{\"type\":\"text\",\"text\":\"Cheers,\"},{\"type\":"
        "\"hardBreak\"},{\"type\":\"text\",\"text\":\"Grace\"}]}]}";
    char *text = s_text_of(adf, 4096);
    assert_string_equal(text, "@Ada Lovelace thanks for the report. Please try:\n"
                              "\n"
                              "1. Clear the cache\n"
                              "2. Run the command:\n"
                              "  - as admin\n"
                              "\n"
                              "parleyctl cache clear --all\n"
                              "parleyctl status\n"
                              "\n"
                              "See the runbook (https://example.atlassian.net/wiki/x/123) or "
                              "https://example.atlassian.net/browse/SUP-42 \xf0\x9f\x98\x84 "
                              "https://x.example\n"
                              "\n"
                              "[attachment]\n"
                              "\n"
                              "Env | Status\n"
                              "prod | OK\n"
                              "\n"
                              "Notes\n"
                              "\n"
                              "quoted\n"
                              "\n"
                              "in a panel\n"
                              "\n"
                              "Cheers,\n"
                              "Grace");
    free(text);
}

static void test_lists_mentions_emoji_and_cards(void **state)
{
    (void)state;
    char *text = s_text_of(
        "{\"type\":\"doc\",\"content\":["
        "{\"type\":\"orderedList\",\"attrs\":{\"order\":3},\"content\":["
        "{\"type\":\"listItem\",\"content\":[{\"type\":\"paragraph\",\"content\":[{\"type\":"
        "\"text\",\"text\":\"three\"},{\"type\":\"hardBreak\"},{\"type\":\"text\",\"text\":"
        "\"more\"}]},{\"type\":\"paragraph\",\"content\":[{\"type\":\"text\",\"text\":\"p2\"}]}]},"
        "{\"type\":\"listItem\",\"content\":[{\"type\":\"paragraph\",\"content\":[{\"type\":"
        "\"text\",\"text\":\"four\"}]}]}]},"
        "{\"type\":\"taskList\",\"content\":[{\"type\":\"taskItem\",\"attrs\":{\"state\":\"DONE\"},"
        "\"content\":[{\"type\":\"text\",\"text\":\"done\"}]},{\"type\":\"taskItem\",\"attrs\":{"
        "\"state\":\"TODO\"},\"content\":[{\"type\":\"text\",\"text\":\"todo\"}]}]},"
        "{\"type\":\"paragraph\",\"content\":[{\"type\":\"mention\",\"attrs\":{\"id\":\"abc\"}},"
        "{\"type\":\"text\",\"text\":\" \"},{\"type\":\"emoji\",\"attrs\":{\"shortName\":"
        "\":tada:\"}},{\"type\":\"mention\",\"attrs\":{}}]},"
        "{\"type\":\"blockCard\",\"attrs\":{\"url\":\"https://card.example\"}},"
        "{\"type\":\"mediaGroup\",\"content\":[{\"type\":\"media\"},{\"type\":\"media\"}]},"
        "{\"type\":\"rule\"},"
        "{\"type\":\"expand\",\"attrs\":{\"title\":\"Details\"},\"content\":[{\"type\":"
        "\"paragraph\",\"content\":[{\"type\":\"text\",\"text\":\"hidden\"}]}]}]}",
        4096);
    assert_string_equal(text, "3. three\n"
                              "  more\n"
                              "  p2\n"
                              "4. four\n"
                              "\n"
                              "- [x] done\n"
                              "- [ ] todo\n"
                              "\n"
                              "@abc :tada:\n"
                              "\n"
                              "https://card.example\n"
                              "\n"
                              "[attachment] [attachment]\n"
                              "\n"
                              "---\n"
                              "\n"
                              "Details\n"
                              "\n"
                              "hidden");
    free(text);
}

static void test_hostile_documents_are_read_or_skipped(void **state)
{
    (void)state;
    /* not a doc at all */
    const char *not_docs[] = {"[1]", "\"doc\"",      "{\"type\":\"paragraph\"}",
                              "{}",  "{\"type\":5}", "{\"type\":\"DOC\"}"};
    for (size_t i = 0; i < sizeof not_docs / sizeof *not_docs; i++) {
        json_t *json = json_loads(not_docs[i], JSON_DECODE_ANY, NULL);
        assert_null(adf_to_text(json, 100));
        json_decref(json);
    }
    assert_null(adf_to_text(NULL, 100));
    /* a doc with no or odd content is empty text */
    char *text = s_text_of("{\"type\":\"doc\"}", 100);
    assert_string_equal(text, "");
    free(text);
    text = s_text_of("{\"type\":\"doc\",\"content\":{\"type\":\"text\",\"text\":\"x\"}}", 100);
    assert_string_equal(text, "");
    free(text);
    /* non-object nodes, non-string text, missing types, attrs of the wrong type */
    text = s_text_of("{\"type\":\"doc\",\"content\":[1,\"s\",null,[{\"type\":\"text\",\"text\":"
                     "\"in array\"}],{\"type\":\"paragraph\",\"content\":[{\"type\":\"text\","
                     "\"text\":7},{\"type\":\"text\",\"text\":[\"x\"]},{\"type\":\"text\"},"
                     "{\"text\":\"untyped\"},{\"type\":\"mention\",\"attrs\":\"x\"},"
                     "{\"type\":\"emoji\",\"attrs\":{\"text\":3}},{\"type\":\"text\",\"text\":"
                     "\"ok\",\"marks\":{\"type\":\"link\"}},{\"type\":\"text\",\"text\":\"!\","
                     "\"marks\":[7,{\"type\":\"link\",\"attrs\":{\"href\":9}}]}]},"
                     "{\"type\":\"orderedList\",\"attrs\":{\"order\":-5},\"content\":[3,{\"type\":"
                     "\"listItem\",\"content\":[{\"type\":\"text\",\"text\":\"one\"}]}]},"
                     "{\"type\":\"table\",\"content\":[{\"content\":[1,{\"content\":[{\"type\":"
                     "\"text\",\"text\":\"c\"}]}]}]},"
                     "{\"type\":\"weirdBlock\",\"content\":[{\"type\":\"text\",\"text\":\"inside\"}"
                     "]}]}",
                     1000);
    assert_string_equal(text, "ok!\n\n1. one\n\nc\n\ninside");
    free(text);
}

/* Tears down a long chain without recursing: each node's next link is kept alive while the
   node itself is freed. */
static void s_free_chain(json_t *node)
{
    while (node) {
        json_t *content = json_object_get(node, "content");
        json_t *next = NULL;
        for (size_t i = 0; i < json_array_size(content); i++) {
            json_t *child = json_array_get(content, i);
            if (json_object_get(child, "content") &&
                json_array_size(json_object_get(child, "content")) > 0)
                next = child;
        }
        json_incref(next);
        json_decref(node);
        node = next;
    }
}

/* A doc: paragraph "top", then levels nested nodes of type, each holding a paragraph "L<i>"
   (i = nesting depth of that paragraph) and the next level. */
static json_t *s_deep_doc(int levels, const char *type)
{
    json_t *inner = NULL;
    for (int i = levels; i >= 1; i--) {
        char label[32];
        snprintf(label, sizeof label, "L%d", i + 1);
        json_t *node = json_pack("{s:s, s:[{s:s, s:[{s:s, s:s}]}]}", "type", type, "content",
                                 "type", "paragraph", "content", "type", "text", "text", label);
        assert_non_null(node);
        if (inner)
            json_array_append_new(json_object_get(node, "content"), inner);
        inner = node;
    }
    json_t *doc =
        json_pack("{s:s, s:i, s:[{s:s, s:[{s:s, s:s}]}]}", "type", "doc", "version", 1, "content",
                  "type", "paragraph", "content", "type", "text", "text", "top");
    json_array_append_new(json_object_get(doc, "content"), inner);
    return doc;
}

static void test_ten_thousand_deep_nesting(void **state)
{
    (void)state;
    const char *types[] = {"blockquote", "somethingUnknown", "bulletList", "table"};
    for (size_t t = 0; t < sizeof types / sizeof *types; t++) {
        json_t *doc = s_deep_doc(10000, types[t]);
        char *text = adf_to_text(doc, 1 << 20);
        assert_non_null(text);
        /* the top paragraph is there; the text at depth 64 is read; depth 65 is not */
        assert_memory_equal(text, "top", 3);
        if (strcmp(types[t], "blockquote") == 0 || strcmp(types[t], "somethingUnknown") == 0) {
            /* a level at depth d holds a paragraph at d + 1 and text at d + 2 */
            assert_non_null(strstr(text, "L63"));
            assert_null(strstr(text, "L64"));
            assert_null(strstr(text, "L65"));
        }
        assert_null(strstr(text, "L66"));
        assert_null(strstr(text, "L10000"));
        free(text);
        s_free_chain(doc);
    }
}

/* True when the n bytes at s are whole UTF-8 characters. */
static bool s_whole_utf8(const char *s, size_t n)
{
    json_t *json = json_stringn(s, n); /* jansson validates UTF-8 */
    json_decref(json);
    return json != NULL;
}

static void test_truncation_on_utf8_boundary(void **state)
{
    (void)state;
    /* a (1 byte) é (2) € (3) 😀 (4): 10 bytes */
    const char *text = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
    json_t *doc = adf_from_text(text, strlen(text));
    const size_t keep[] = {0, 1, 1, 3, 3, 3, 6, 6, 6, 6, 10, 10, 10};
    for (size_t max = 0; max < sizeof keep / sizeof *keep; max++) {
        char *out = adf_to_text(doc, max);
        assert_non_null(out);
        assert_int_equal(strlen(out), keep[max]);
        assert_memory_equal(out, text, keep[max]);
        free(out);
    }
    json_decref(doc);
    /* separators count too, and the cut never splits a character across nodes */
    const char *two = "\xe2\x82\xac\xe2\x82\xac\n\n\xe2\x82\xac";
    doc = adf_from_text(two, strlen(two));
    for (size_t max = 0; max <= strlen(two) + 1; max++) {
        char *out = adf_to_text(doc, max);
        assert_true(strlen(out) <= max);
        assert_true(s_whole_utf8(out, strlen(out)));
        assert_memory_equal(out, two, strlen(out));
        free(out);
    }
    json_decref(doc);
    /* a long comment stops at max_bytes */
    char *big = malloc(ADF_TEXT_MAX + 1);
    for (size_t i = 0; i + 3 <= ADF_TEXT_MAX; i += 3)
        memcpy(big + i, "\xe2\x82\xac", 3);
    doc = adf_from_text(big, ADF_TEXT_MAX / 3 * 3);
    char *out = adf_to_text(doc, 1000);
    assert_int_equal(strlen(out), 999);
    assert_true(s_whole_utf8(out, 999));
    free(out);
    json_decref(doc);
    free(big);
}

int test_adf_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paragraphs_and_hard_breaks),
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_round_trip_property_on_generated_text),
        cmocka_unit_test(test_crlf_and_blank_line_normalisation),
        cmocka_unit_test(test_empty_invalid_and_oversize_text_refused),
        cmocka_unit_test(test_real_jira_comment),
        cmocka_unit_test(test_lists_mentions_emoji_and_cards),
        cmocka_unit_test(test_hostile_documents_are_read_or_skipped),
        cmocka_unit_test(test_ten_thousand_deep_nesting),
        cmocka_unit_test(test_truncation_on_utf8_boundary),
    };
    return cmocka_run_group_tests_name("adf", tests, NULL, NULL);
}
