"""The search query language: lexer, parser and evaluator over a ``_SearchIndex``."""

from __future__ import annotations

from typing import NamedTuple, TYPE_CHECKING

from .vocabulary import tokenize

if TYPE_CHECKING:
    from .search_index import _SearchIndex
    from .core import World


# --- search query language ---------------------------------------------------------------------

_OPS = ("from", "to", "lang", "is", "conversation_id")
_IS_VALUES = ("retweet", "reply", "quote")


class _Node(NamedTuple):
    op: str  # "and", "or", "term"
    children: tuple  # and/or: nodes; term: (kind, value)
    negated: bool = False


#: a term with no searchable characters (punctuation only): matches nothing, and beside
#: other terms of an AND group it is ignored, as the API's tokenizer drops punctuation
_NOTHING = _Node("term", ("nothing", None))


def _lex(query: str) -> list[str]:
    """Split a query into terms, ``"phrase"`` tokens (kept quoted), parentheses and ``-``."""
    out: list[str] = []
    i, n = 0, len(query)
    while i < n:
        ch = query[i]
        if ch.isspace():
            i += 1
        elif ch in "()":
            out.append(ch)
            i += 1
        elif ch == '"' or (ch == "-" and i + 1 < n and query[i + 1] in '"('):
            if ch == "-":
                out.append("-")
                i += 1
                if query[i] == "(":
                    continue
            end = query.find('"', i + 1)
            if end < 0:
                raise ValueError(f"unterminated quote in search query: {query!r}")
            out.append(query[i : end + 1])
            i = end + 1
        else:
            j = i
            while j < n and not query[j].isspace() and query[j] not in '()"':
                j += 1
            out.append(query[i:j])
            i = j
    return out


def _parse(query: str) -> _Node:
    if not isinstance(query, str) or not query.strip():
        raise ValueError("empty search query")
    toks = _lex(query)
    pos = 0

    def peek() -> str | None:
        return toks[pos] if pos < len(toks) else None

    def parse_or() -> _Node:
        nonlocal pos
        groups = [parse_and()]
        while peek() == "OR":
            pos += 1
            groups.append(parse_and())
        return groups[0] if len(groups) == 1 else _Node("or", tuple(groups))

    def parse_and() -> _Node:
        items: list[_Node] = []
        while (tok := peek()) is not None and tok not in ("OR", ")"):
            items.append(parse_unary())
        if not items:
            raise ValueError(f"search query has an empty group or a dangling OR: {query!r}")
        if all(it.negated for it in items):
            raise ValueError(f"search query needs at least one term that is not negated: {query!r}")
        return items[0] if len(items) == 1 else _Node("and", tuple(items))

    def parse_unary() -> _Node:
        nonlocal pos
        tok = toks[pos]
        negated = False
        if tok == "-":
            negated = True
            pos += 1
            tok = peek()  # type: ignore[assignment]
            if tok is None:
                raise ValueError(f"dangling '-' in search query: {query!r}")
        elif tok.startswith("-") and len(tok) > 1:
            negated = True
            tok = tok[1:]
            toks[pos] = tok
        if tok == "(":
            pos += 1
            node = parse_or()
            if peek() != ")":
                raise ValueError(f"unbalanced parentheses in search query: {query!r}")
            pos += 1
        elif tok == ")":
            raise ValueError(f"unbalanced parentheses in search query: {query!r}")
        else:
            pos += 1
            node = _term(tok, query)
        return node._replace(negated=node.negated != negated)

    tree = parse_or()
    if pos != len(toks):
        raise ValueError(f"unbalanced parentheses in search query: {query!r}")
    return tree


def _term(tok: str, query: str) -> _Node:
    if tok.startswith('"'):
        words = tokenize(tok[1:-1])
        if not words:
            return _NOTHING  # like the API: an empty result, not an error
        return _Node("term", ("phrase", tuple(words)))
    if tok in ("-", "OR"):
        raise ValueError(f"misplaced {tok!r} in search query: {query!r}")
    if tok[0] in "#@" and len(tok) > 1:
        return _Node("term", (tok[0], tok[1:].lower()))
    if ":" in tok and not tok.startswith(("http://", "https://")):
        op, _, value = tok.partition(":")
        op = op.lower()
        if op not in _OPS:
            raise ValueError(f"unsupported search operator {op + ':'!r} (supported: from: to: lang: is: conversation_id:)")
        if not value:
            raise ValueError(f"operator {op + ':'!r} needs a value in search query: {query!r}")
        if op == "conversation_id" and not (value.isascii() and value.isdigit()):
            raise ValueError(f"conversation_id: takes a tweet id, got {value!r}")
        if op == "is" and value.lower() not in _IS_VALUES:
            raise ValueError(f"unsupported is:{value} (supported: is:retweet, is:reply, is:quote)")
        return _Node("term", (op, value.lower()))
    words = tokenize(tok)
    if not words:
        return _NOTHING  # punctuation only ("!!!", "?"): the API answers an empty result
    return _Node("term", ("word", words[0]) if len(words) == 1 else ("phrase", tuple(words)))


class _Evaluator:
    def __init__(self, world: World, idx: _SearchIndex) -> None:
        self.world = world
        self.idx = idx

    def eval(self, node: _Node) -> set[int] | frozenset[int]:
        if node.op == "or":
            out: set[int] = set()
            for child in node.children:
                out |= self._eval_signed(child)
            return out
        if node.op == "and":
            terms = [c for c in node.children if not c.negated and c.children != _NOTHING.children]
            if not terms:
                return frozenset()
            pos = sorted(map(self.eval, terms), key=len)
            out = set(pos[0])
            for p in pos[1:]:
                out &= p
            for c in node.children:
                if c.negated and out:
                    out -= self.eval(c)
            return out
        return self._term(*node.children)

    def _eval_signed(self, node: _Node) -> set[int] | frozenset[int]:
        # A negated OR branch (e.g. ``a OR -b`` inside a group) means "everything but".
        return set(range(len(self.idx.tids))) - self.eval(node) if node.negated else self.eval(node)

    def _term(self, kind: str, value: object) -> frozenset[int]:
        w = self.world
        if kind == "nothing":
            return frozenset()
        if kind == "word":
            return self.idx.lines_with(f" {value} ")
        if kind == "phrase":
            return self.idx.lines_with(f" {' '.join(value)} ")  # type: ignore[arg-type]
        if kind in ("#", "@"):
            return self.idx.lines_with(f" {kind}{value} ")
        if kind in ("from", "to"):
            v = str(value)
            i = w.index_of(int(v)) if v.isdigit() else None
            if i is None:
                i = w.index_of_screen_name(v)
            return frozenset() if i is None else self.idx.lines_with(f" {kind}:{i} ")
        if kind == "conversation_id":  # replies carry their conversation's root id; the root itself does not match
            return self.idx.lines_with(f" conversation_id:{int(str(value))} ")
        return self.idx.lines_with(f" {kind}:{value} ")  # lang:xx, is:retweet|reply|quote
