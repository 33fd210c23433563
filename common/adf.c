/*  adf.c - see adf.h. */
#include "adf.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- text to ADF ---------------------------------------------------------------------- */

/* True when n bytes of s are well-formed UTF-8 without NUL bytes (RFC 3629: no overlong
   forms, no surrogates, nothing above U+10FFFF). */
static bool s_utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i < len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if (len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF)))
            return false;
        if (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))
            return false;
        i += len;
    }
    return true;
}

/* Appends {"type":type} (plus "text":text when text is not NULL) to array. Returns 0, or -1
   when memory runs out. */
static int s_append_node(json_t *array, const char *type, const char *text, size_t text_len)
{
    json_t *node = json_object();
    if (!node || json_object_set_new(node, "type", json_string(type)) != 0 ||
        (text && json_object_set_new(node, "text", json_stringn(text, text_len)) != 0)) {
        json_decref(node);
        return -1;
    }
    return json_array_append_new(array, node);
}

/* Appends a new paragraph to content and returns its (borrowed) content array, or NULL. */
static json_t *s_new_paragraph(json_t *content)
{
    json_t *paragraph = json_object();
    json_t *inner = json_array();
    if (!paragraph || !inner || json_object_set_new(paragraph, "type", json_string("paragraph")) ||
        json_object_set(paragraph, "content", inner) || json_array_append(content, paragraph)) {
        json_decref(inner);
        json_decref(paragraph);
        return NULL;
    }
    json_decref(inner);     /* the paragraph holds it */
    json_decref(paragraph); /* content holds it */
    return inner;
}

json_t *adf_from_text(const char *text, size_t length)
{
    if (!text || length == 0 || length > ADF_TEXT_MAX ||
        !s_utf8_valid((const unsigned char *)text, length))
        return NULL;
    size_t blank = 0;
    while (blank < length && (text[blank] == ' ' || text[blank] == '\t' || text[blank] == '\r' ||
                              text[blank] == '\n'))
        blank++;
    if (blank == length)
        return NULL;
    json_t *doc = json_object();
    json_t *content = json_array();
    if (!doc || !content || json_object_set_new(doc, "type", json_string("doc")) ||
        json_object_set_new(doc, "version", json_integer(1)) ||
        json_object_set(doc, "content", content))
        goto fail;
    json_t *paragraph = NULL; /* content of the open paragraph, borrowed */
    size_t i = 0;
    while (i <= length) {
        /* One line: up to "\n" or "\r\n" or the end. */
        size_t end = i;
        while (end < length && text[end] != '\n' &&
               !(text[end] == '\r' && end + 1 < length && text[end + 1] == '\n'))
            end++;
        if (end == i) {
            paragraph = NULL; /* a blank line closes the paragraph */
        } else {
            if (!paragraph)
                paragraph = s_new_paragraph(content);
            else if (s_append_node(paragraph, "hardBreak", NULL, 0) != 0)
                goto fail;
            if (!paragraph || s_append_node(paragraph, "text", text + i, end - i) != 0)
                goto fail;
        }
        if (end >= length)
            break;
        i = end + (text[end] == '\r' ? 2 : 1);
    }
    json_decref(content);
    return doc;
fail:
    json_decref(content);
    json_decref(doc);
    return NULL;
}

/* ---- ADF to text ---------------------------------------------------------------------- */

/* The text being built and where the renderer stands. Separators are owed, not written, so
   nothing trails and nothing leads. */
typedef struct {
    char *buf;
    size_t len;        /* bytes written, without the NUL */
    size_t cap;        /* bytes allocated */
    size_t max;        /* bytes allowed, without the NUL */
    bool full;         /* max reached: everything further is dropped */
    bool oom;          /* an allocation failed */
    size_t pending_nl; /* newlines owed before the next text */
    bool pending_space;
    bool fresh;     /* a list prefix was just written: the next block needs no separator */
    int list_depth; /* lists around the current node */
    int in_cell;    /* table cells around the current node */
    size_t visits;  /* nodes visited */
} s_render_t;

/* Writes n bytes of valid UTF-8, cut before max on a character boundary. */
static void s_put(s_render_t *st, const char *s, size_t n)
{
    if (st->full || st->oom || n == 0)
        return;
    if (n > st->max - st->len) {
        size_t k = st->max - st->len;
        while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
            k--;
        n = k;
        st->full = true;
    }
    if (st->len + n + 1 > st->cap) {
        size_t cap = st->cap;
        while (cap < st->len + n + 1)
            cap *= 2;
        if (cap > st->max + 1)
            cap = st->max + 1;
        char *buf = realloc(st->buf, cap);
        if (!buf) {
            st->oom = true;
            return;
        }
        st->buf = buf;
        st->cap = cap;
    }
    memcpy(st->buf + st->len, s, n);
    st->len += n;
}

static void s_indent(s_render_t *st, int levels)
{
    for (int i = 0; i < levels && !st->full; i++)
        s_put(st, "  ", 2);
}

/* Writes the owed separators (none at the very start). Inside a list, a new line is
   indented to the item's text when continuation is set. */
static void s_flush(s_render_t *st, bool continuation)
{
    if (st->len > 0) {
        if (st->pending_nl > 0) {
            for (size_t i = 0; i < st->pending_nl && !st->full; i++)
                s_put(st, "\n", 1);
            if (continuation)
                s_indent(st, st->list_depth);
        } else if (st->pending_space) {
            s_put(st, " ", 1);
        }
    }
    st->pending_nl = 0;
    st->pending_space = false;
}

/* Writes text (NUL-terminated, may be NULL) after the owed separators. */
static void s_text(s_render_t *st, const char *text)
{
    if (!text || !*text)
        return;
    s_flush(st, true);
    st->fresh = false;
    s_put(st, text, strlen(text));
}

/* A block starts: owe a blank line (a line break inside lists, a space inside cells). */
static void s_block(s_render_t *st)
{
    if (st->fresh)
        return;
    if (st->in_cell > 0) {
        st->pending_space = true;
    } else {
        size_t want = st->list_depth > 0 ? 1 : 2;
        if (st->pending_nl < want)
            st->pending_nl = want;
    }
}

static void s_line_break(s_render_t *st)
{
    if (st->in_cell > 0)
        st->pending_space = true;
    else
        st->pending_nl++;
}

/* Borrowed string attribute attrs.name of node, or NULL. */
static const char *s_attr(json_t *node, const char *name)
{
    return json_string_value(json_object_get(json_object_get(node, "attrs"), name));
}

static const char *s_type(json_t *node)
{
    const char *type = json_string_value(json_object_get(node, "type"));
    return type ? type : "";
}

static bool s_is(const char *type, const char *name)
{
    return strcmp(type, name) == 0;
}

static bool s_is_list(const char *type)
{
    return s_is(type, "bulletList") || s_is(type, "orderedList") || s_is(type, "taskList") ||
           s_is(type, "decisionList");
}

static void s_node(s_render_t *st, json_t *node, int depth);

/* Renders the content array of node at depth + 1. */
static void s_children(s_render_t *st, json_t *node, int depth)
{
    json_t *content = json_object_get(node, "content");
    size_t size = json_array_size(content);
    for (size_t i = 0; i < size && !st->full && !st->oom; i++)
        s_node(st, json_array_get(content, i), depth + 1);
}

static void s_text_node(s_render_t *st, json_t *node)
{
    const char *text = json_string_value(json_object_get(node, "text"));
    if (!text || !*text)
        return;
    s_text(st, text);
    json_t *marks = json_object_get(node, "marks");
    for (size_t i = 0; i < json_array_size(marks); i++) {
        json_t *mark = json_array_get(marks, i);
        const char *href = s_attr(mark, "href");
        if (s_is(s_type(mark), "link") && href && *href && strcmp(href, text) != 0) {
            s_text(st, " (");
            s_text(st, href);
            s_text(st, ")");
            break;
        }
    }
}

/* A list: each item on its own line after its prefix; nested lists indent. */
static void s_list(s_render_t *st, json_t *list, const char *type, int depth)
{
    s_block(st);
    long number = 1;
    json_t *order = json_object_get(json_object_get(list, "attrs"), "order");
    if (json_is_integer(order) && json_integer_value(order) >= 0 &&
        json_integer_value(order) < 1000000000)
        number = (long)json_integer_value(order);
    st->list_depth++;
    json_t *content = json_object_get(list, "content");
    for (size_t i = 0; i < json_array_size(content) && !st->full && !st->oom; i++) {
        json_t *item = json_array_get(content, i);
        if (!json_is_object(item) || depth + 1 > ADF_MAX_DEPTH)
            continue;
        if (s_is_list(s_type(item))) { /* taskList nests lists directly */
            s_node(st, item, depth + 1);
            continue;
        }
        if (++st->visits > ADF_MAX_NODES)
            break;
        char prefix[32];
        if (s_is(type, "orderedList"))
            snprintf(prefix, sizeof prefix, "%ld. ", number++);
        else if (s_is(type, "taskList"))
            snprintf(prefix, sizeof prefix, "- [%c] ",
                     s_attr(item, "state") && s_is(s_attr(item, "state"), "DONE") ? 'x' : ' ');
        else
            snprintf(prefix, sizeof prefix, "- ");
        if (st->in_cell > 0)
            st->pending_space = true;
        else if (st->pending_nl < 1)
            st->pending_nl = 1;
        s_flush(st, false);
        s_indent(st, st->list_depth - 1);
        s_put(st, prefix, strlen(prefix));
        st->fresh = true;
        s_children(st, item, depth + 1);
        st->fresh = false;
    }
    st->list_depth--;
}

/* A table: rows on their own lines, cells joined by " | ". */
static void s_table(s_render_t *st, json_t *table, int depth)
{
    s_block(st);
    json_t *rows = json_object_get(table, "content");
    size_t rows_seen = 0;
    for (size_t r = 0; r < json_array_size(rows) && !st->full && !st->oom; r++) {
        json_t *row = json_array_get(rows, r);
        if (!json_is_object(row) || depth + 1 > ADF_MAX_DEPTH || ++st->visits > ADF_MAX_NODES)
            continue;
        if (rows_seen++ > 0) {
            if (st->in_cell > 0)
                st->pending_space = true;
            else if (st->pending_nl < 1)
                st->pending_nl = 1;
        }
        json_t *cells = json_object_get(row, "content");
        size_t cells_seen = 0;
        for (size_t c = 0; c < json_array_size(cells) && !st->full && !st->oom; c++) {
            json_t *cell = json_array_get(cells, c);
            if (!json_is_object(cell) || depth + 2 > ADF_MAX_DEPTH || ++st->visits > ADF_MAX_NODES)
                continue;
            if (cells_seen++ > 0) {
                s_flush(st, true);
                s_put(st, " | ", 3);
            }
            st->in_cell++;
            st->fresh = true;
            s_children(st, cell, depth + 2);
            st->fresh = false;
            st->in_cell--;
        }
    }
}

static void s_node(s_render_t *st, json_t *node, int depth)
{
    if (depth > ADF_MAX_DEPTH || !json_is_object(node) || st->full || st->oom ||
        ++st->visits > ADF_MAX_NODES)
        return;
    const char *type = s_type(node);
    if (s_is(type, "text")) {
        s_text_node(st, node);
    } else if (s_is(type, "hardBreak")) {
        s_line_break(st);
    } else if (s_is(type, "mention")) {
        const char *text = s_attr(node, "text"), *id = s_attr(node, "id");
        if (text && *text) {
            s_text(st, text);
        } else if (id && *id) {
            s_text(st, "@");
            s_text(st, id);
        }
    } else if (s_is(type, "emoji")) {
        const char *text = s_attr(node, "text");
        s_text(st, text && *text ? text : s_attr(node, "shortName"));
    } else if (s_is(type, "inlineCard")) {
        s_text(st, s_attr(node, "url"));
    } else if (s_is(type, "blockCard") || s_is(type, "embedCard")) {
        s_block(st);
        s_text(st, s_attr(node, "url"));
    } else if (s_is(type, "status")) {
        s_text(st, s_attr(node, "text"));
    } else if (s_is(type, "media") || s_is(type, "mediaInline")) {
        s_text(st, "[attachment]");
    } else if (s_is(type, "mediaSingle") || s_is(type, "mediaGroup")) {
        s_block(st);
        json_t *content = json_object_get(node, "content");
        for (size_t i = 0; i < json_array_size(content) && !st->full && !st->oom; i++) {
            if (i > 0)
                st->pending_space = true;
            s_node(st, json_array_get(content, i), depth + 1);
        }
    } else if (s_is(type, "rule")) {
        s_block(st);
        s_text(st, "---");
    } else if (s_is_list(type)) {
        s_list(st, node, type, depth);
    } else if (s_is(type, "table")) {
        s_table(st, node, depth);
    } else if (s_is(type, "expand") || s_is(type, "nestedExpand")) {
        s_block(st);
        s_text(st, s_attr(node, "title"));
        s_children(st, node, depth);
    } else if (s_is(type, "paragraph") || s_is(type, "heading") || s_is(type, "blockquote") ||
               s_is(type, "codeBlock") || s_is(type, "panel") || s_is(type, "doc")) {
        s_block(st);
        s_children(st, node, depth);
    } else {
        /* Unknown: its content, if any; what sits right in the doc is a block by schema. */
        if (depth == 1)
            s_block(st);
        s_children(st, node, depth);
    }
}

char *adf_to_text(json_t *doc, size_t max_bytes)
{
    if (!json_is_object(doc) || !s_is(s_type(doc), "doc"))
        return NULL;
    s_render_t st = {0};
    st.max = max_bytes < SIZE_MAX / 4 ? max_bytes : SIZE_MAX / 4;
    st.cap = st.max < 255 ? st.max + 1 : 256;
    st.buf = malloc(st.cap);
    if (!st.buf)
        return NULL;
    s_children(&st, doc, 0);
    if (st.oom) {
        free(st.buf);
        return NULL;
    }
    st.buf[st.len] = '\0';
    return st.buf;
}
