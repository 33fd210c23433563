/*  adf.h - Atlassian Document Format (the JSON of Jira comments) to and from chat text.

    A chat message becomes a Jira comment with adf_from_text, and a comment an agent writes in
    Jira becomes chat text with adf_to_text. The text side is UTF-8 with "\n" line ends.

    adf_from_text: blocks separated by one or more blank lines become paragraphs, and the
    single line breaks inside a block become hardBreak nodes between non-empty text nodes.
    The normalisation: "\r\n" becomes "\n" (a lone "\r" stays text), leading and trailing
    newlines are dropped, and a run of 2 or more newlines is one paragraph break. So for any
    text t with "\n" line ends, no leading or trailing newline and no run of 3 or more
    newlines, adf_to_text(adf_from_text(t)) == t.

    adf_to_text renders what a Jira user can write: text (a link mark whose href differs from
    the text adds " (href)"), hardBreak, blocks separated by a blank line, list items on their
    own lines ("- ", "1. ", two spaces of indent per nested list), mentions, emoji, cards,
    media as "[attachment]", status lozenges, a rule as "---", tables as rows of cells joined
    by " | "; other nodes give their content (as a block when they sit right in the doc). It is
    built for hostile documents: nodes nested deeper than ADF_MAX_DEPTH are skipped, at most
    ADF_MAX_NODES nodes are visited, non-object nodes and non-string text are ignored, and the
    output stops at max_bytes on a UTF-8 character boundary. Recursion is bounded by
    ADF_MAX_DEPTH, so the C stack is safe whatever the document's depth.

    Nothing here logs or keeps state; thread-safe. Uses jansson. */
#ifndef ADF_H
#define ADF_H

#include <jansson.h>
#include <stddef.h>

#define ADF_TEXT_MAX 32767    /* bytes of chat text, Jira's comment limit */
#define ADF_MAX_DEPTH 64      /* node depth below the doc that adf_to_text still reads */
#define ADF_MAX_NODES 1000000 /* nodes adf_to_text visits at most */

/* Returns a new ADF document {"type":"doc","version":1,"content":[paragraphs]} (caller
   decrefs) for length bytes of text. Returns NULL when text is empty or only spaces, tabs
   and line ends, is longer than ADF_TEXT_MAX, is not valid UTF-8 (overlong forms, surrogates
   and NUL bytes included), or memory runs out. */
json_t *adf_from_text(const char *text, size_t length);

/* Returns the plain text of doc (borrowed) as a new NUL-terminated string of at most
   max_bytes bytes (caller frees; possibly empty), or NULL when doc is not an object of type
   "doc" or memory runs out. Never fails on odd content: what it cannot read it skips. */
char *adf_to_text(json_t *doc, size_t max_bytes);

#endif
