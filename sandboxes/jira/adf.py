"""adf.py - Atlassian Document Format: the checks Jira applies to comment bodies, and the plain
text and HTML that the sandbox derives from a document.

problem() accepts what Jira accepts for a v3 comment or description: {"type": "doc",
"version": 1, "content": [...]} whose nodes are known ADF node types nested where ADF allows
them (block nodes in the doc, inline nodes in paragraphs and headings, list items in lists,
...), text nodes with a non-empty string and known marks. It is structural, not the complete
ADF JSON schema: node attributes are checked only where a missing one breaks rendering
(heading level, mention id, link href). to_text() gives what a reader sees: paragraphs
separated by a blank line, hardBreak as a line break (the same rules as common/adf.c, so text
round-trips through from_text()). Depth and node counts are bounded, so a hostile document
cannot exhaust the stack. Nothing here keeps state or logs; thread-safe."""
import html

MAX_DEPTH = 64
MAX_NODES = 100000

INLINE = frozenset(("text", "hardBreak", "mention", "emoji", "inlineCard", "date", "status",
                    "mediaInline", "placeholder", "inlineExtension"))
BLOCK = frozenset(("paragraph", "heading", "bulletList", "orderedList", "blockquote",
                   "codeBlock", "rule", "panel", "mediaSingle", "mediaGroup", "table", "expand",
                   "nestedExpand", "blockCard", "embedCard", "extension", "bodiedExtension",
                   "layoutSection", "taskList", "decisionList"))
LISTS = frozenset(("bulletList", "orderedList"))
# Which children each node type may hold (None: no content allowed).
CHILDREN = {
    "doc": BLOCK,
    "paragraph": INLINE, "heading": INLINE,
    "bulletList": frozenset(("listItem",)), "orderedList": frozenset(("listItem",)),
    "listItem": frozenset(("paragraph", "codeBlock", "mediaSingle")) | LISTS,
    "blockquote": frozenset(("paragraph", "codeBlock", "mediaGroup", "mediaSingle")) | LISTS,
    "codeBlock": frozenset(("text",)),
    "panel": frozenset(("paragraph", "heading", "codeBlock", "rule", "mediaGroup",
                        "mediaSingle", "blockCard")) | LISTS,
    "mediaSingle": frozenset(("media", "caption")), "mediaGroup": frozenset(("media",)),
    "caption": INLINE,
    "table": frozenset(("tableRow",)), "tableRow": frozenset(("tableHeader", "tableCell")),
    "tableHeader": BLOCK - {"table"}, "tableCell": BLOCK - {"table"},
    "expand": BLOCK - {"expand"}, "nestedExpand": BLOCK - {"expand", "nestedExpand", "table"},
    "bodiedExtension": BLOCK - {"bodiedExtension"},
    "layoutSection": frozenset(("layoutColumn",)), "layoutColumn": BLOCK - {"layoutSection"},
    "taskList": frozenset(("taskItem", "taskList")), "taskItem": INLINE,
    "decisionList": frozenset(("decisionItem",)), "decisionItem": INLINE,
}
LEAVES = frozenset(("text", "hardBreak", "mention", "emoji", "inlineCard", "date", "status",
                    "mediaInline", "placeholder", "inlineExtension", "rule", "media",
                    "blockCard", "embedCard", "extension"))
MARKS = frozenset(("strong", "em", "code", "strike", "underline", "link", "textColor",
                   "subsup", "backgroundColor", "alignment", "indentation", "border"))


def problem(doc):
    """Returns None when doc is an ADF document Jira would take, else a short reason that
    names the place and the rule (never any text of the document)."""
    if not isinstance(doc, dict):
        return "$: must be an ADF document object"
    if doc.get("type") != "doc":
        return "$.type: must be \"doc\""
    if doc.get("version") != 1 or isinstance(doc.get("version"), bool):
        return "$.version: must be 1"
    if not isinstance(doc.get("content"), list):
        return "$.content: must be an array"
    budget = [MAX_NODES]
    return _check_children(doc, "doc", "$", 0, budget)


def _check_children(node, kind, where, depth, budget):
    content = node.get("content")
    if content is None:
        return None
    if kind in LEAVES:
        return f"{where}.content: a {kind} node has no content"
    if not isinstance(content, list):
        return f"{where}.content: must be an array"
    allowed = CHILDREN.get(kind, BLOCK | INLINE)
    if kind in LISTS and not content:
        return f"{where}.content: a list needs at least one listItem"
    for i, child in enumerate(content):
        here = f"{where}.content[{i}]"
        budget[0] -= 1
        if budget[0] < 0:
            return f"{here}: more than {MAX_NODES} nodes"
        if depth + 1 > MAX_DEPTH:
            return f"{here}: nested deeper than {MAX_DEPTH} levels"
        if not isinstance(child, dict) or not isinstance(child.get("type"), str):
            return f"{here}: must be a node object with a string type"
        ctype = child["type"]
        if ctype not in CHILDREN and ctype not in LEAVES:
            return f"{here}.type: unknown node type '{ctype[:40]}'"
        if ctype not in allowed:
            return f"{here}: a {ctype} node cannot be inside a {kind} node"
        found = _check_node(child, ctype, here) or \
            _check_children(child, ctype, here, depth + 1, budget)
        if found:
            return found
    return None


def _check_node(node, kind, where):
    attrs = node.get("attrs")
    if attrs is not None and not isinstance(attrs, dict):
        return f"{where}.attrs: must be an object"
    attrs = attrs or {}
    if kind == "text":
        if not isinstance(node.get("text"), str) or not node["text"]:
            return f"{where}.text: must be a non-empty string"
        marks = node.get("marks", [])
        if not isinstance(marks, list):
            return f"{where}.marks: must be an array"
        for j, mark in enumerate(marks):
            if not isinstance(mark, dict) or mark.get("type") not in MARKS:
                return f"{where}.marks[{j}]: unknown mark"
            if mark["type"] == "link" and not isinstance((mark.get("attrs") or {}).get("href"),
                                                         str):
                return f"{where}.marks[{j}].attrs.href: a link needs an href string"
    elif kind == "heading":
        level = attrs.get("level")
        if not isinstance(level, int) or isinstance(level, bool) or not 1 <= level <= 6:
            return f"{where}.attrs.level: must be an integer from 1 to 6"
    elif kind == "mention" and not isinstance(attrs.get("id"), str):
        return f"{where}.attrs.id: a mention needs an id string"
    return None


def to_text(doc, limit=1 << 20):
    """The plain text of a document that passed problem() (anything else gives what can be
    read of it). At most limit characters."""
    blocks = []
    for node in (doc.get("content") or []) if isinstance(doc, dict) else []:
        text = _block_text(node, 0)
        if text:
            blocks.append(text)
    return "\n\n".join(blocks)[:limit]


def _block_text(node, depth):
    if not isinstance(node, dict) or depth > MAX_DEPTH:
        return ""
    kind = node.get("type")
    if kind in LISTS:
        lines = []
        for n, item in enumerate(node.get("content") or [], 1):
            text = "\n".join(t for t in (_block_text(c, depth + 1)
                                         for c in (item.get("content") or [])
                                         if isinstance(item, dict)) if t)
            bullet = "- " if kind == "bulletList" else f"{n}. "
            lines.append(bullet + text.replace("\n", "\n  "))
        return "\n".join(lines)
    if kind == "rule":
        return "---"
    if kind in CHILDREN and CHILDREN[kind] is INLINE or kind == "codeBlock":
        return "".join(_inline_text(c) for c in node.get("content") or [])
    parts = [_block_text(c, depth + 1) for c in node.get("content") or []]
    return "\n\n".join(p for p in parts if p)


def _inline_text(node):
    if not isinstance(node, dict):
        return ""
    kind, attrs = node.get("type"), node.get("attrs") or {}
    if kind == "text":
        return node.get("text") if isinstance(node.get("text"), str) else ""
    if kind == "hardBreak":
        return "\n"
    if kind == "mention":
        return str(attrs.get("text") or "@" + str(attrs.get("id", "")))
    if kind == "emoji":
        return str(attrs.get("text") or attrs.get("shortName") or "")
    if kind in ("inlineCard", "blockCard"):
        return str(attrs.get("url") or "")
    if kind == "status":
        return str(attrs.get("text") or "")
    if kind == "date":
        return str(attrs.get("timestamp") or "")
    return ""


def from_text(text):
    """An ADF document for plain text: blank-line separated blocks become paragraphs and single
    line breaks hardBreak nodes (the inverse of to_text for such text)."""
    text = text.replace("\r\n", "\n").strip("\n")
    paragraphs = []
    for block in (b for b in text.split("\n\n") if b.strip("\n")):
        content = []
        for n, line in enumerate(block.strip("\n").split("\n")):
            if n:
                content.append({"type": "hardBreak"})
            if line:
                content.append({"type": "text", "text": line})
        paragraphs.append({"type": "paragraph", "content": content})
    return {"type": "doc", "version": 1, "content": paragraphs}


def to_html(doc):
    """The renderedBody Jira returns with expand=renderedBody: one <p> per block."""
    text = to_text(doc)
    return "".join("<p>" + html.escape(block).replace("\n", "<br/>") + "</p>"
                   for block in text.split("\n\n") if block)
