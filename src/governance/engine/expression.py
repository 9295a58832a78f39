"""A tiny, safe arithmetic language for what a term costs in money (no `eval`).

Grammar (recursive descent, parsed once into an immutable tree):

    expr    := product (("+" | "-") product)*
    product := unary (("*" | "/") unary)*
    unary   := "-" unary | primary
    primary := NUMBER | NAME | ("min" | "max") "(" expr "," expr ")" | "(" expr ")"

Numbers are decimal literals (`12`, `0.05`), names are `^[a-z][a-z0-9_]{0,63}$`. Evaluation is
exact `Decimal` arithmetic against a mapping of variables. A variable the mapping lacks, a
division by zero or an arithmetic overflow give None: a figure that cannot be worked out for this
deal is unknown, not an error. Text that does not parse raises `ExpressionError` with the
position (0-based) of the offending character.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Context, Decimal, DivisionByZero, InvalidOperation, Overflow, localcontext
from typing import Literal

MAX_LENGTH = 500
MAX_DEPTH = 32
# Digits a literal may have: far beyond any money figure, far below Decimal's limits.
MAX_LITERAL_DIGITS = 30
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,63}")
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_FUNCTIONS = frozenset({"min", "max"})
# Enough precision that money figures over 18-digit amounts stay exact through a few steps.
_CONTEXT = Context(prec=50, traps=[InvalidOperation, DivisionByZero, Overflow])


class ExpressionError(ValueError):
    """The text is not a valid expression; `position` is where reading failed."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} (at position {position})")
        self.message = message
        self.position = position


@dataclass(frozen=True, slots=True)
class Number:
    value: Decimal


@dataclass(frozen=True, slots=True)
class Name:
    name: str


@dataclass(frozen=True, slots=True)
class Negate:
    operand: Node


@dataclass(frozen=True, slots=True)
class Binary:
    op: Literal["+", "-", "*", "/"]
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Call:
    function: Literal["min", "max"]
    left: Node
    right: Node


Node = Number | Name | Negate | Binary | Call


@dataclass(frozen=True, slots=True)
class Token:
    kind: Literal["number", "name", "op", "end"]
    text: str
    position: int


def _tokens(text: str) -> list[Token]:
    out: list[Token] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char in " \t\n\r":
            i += 1
            continue
        if "0" <= char <= "9":
            match = _NUMBER.match(text, i)
            if match is None:  # unreachable: an ASCII digit always starts a number
                raise ExpressionError("expected a number", i)
            if match.end() < len(text) and text[match.end()] == ".":
                raise ExpressionError("a number has at most one decimal point", match.end())
            digits = match.group().replace(".", "")
            if len(digits) > MAX_LITERAL_DIGITS:
                raise ExpressionError(f"a number has at most {MAX_LITERAL_DIGITS} digits", i)
            out.append(Token("number", match.group(), i))
            i = match.end()
            continue
        if "a" <= char <= "z":
            match = NAME_PATTERN.match(text, i)
            assert match is not None
            end = match.end()
            if end < len(text) and (text[end].isalnum() or text[end] == "_"):
                raise ExpressionError(
                    "names are lower_snake_case, at most 64 characters "
                    "(a letter, then letters, digits or _)",
                    end,
                )
            out.append(Token("name", match.group(), i))
            i = end
            continue
        if char in "+-*/(),":
            out.append(Token("op", char, i))
            i += 1
            continue
        raise ExpressionError(f"unexpected character {char!r}", i)
    out.append(Token("end", "", len(text)))
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.index = 0
        self.depth = 0

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def take(self, text: str) -> bool:
        token = self.current
        if token.kind == "op" and token.text == text:
            self.index += 1
            return True
        return False

    def expect(self, text: str) -> None:
        if not self.take(text):
            raise ExpressionError(
                f"expected {text!r}, found {self._describe()}", self.current.position
            )

    def _describe(self) -> str:
        token = self.current
        return "the end" if token.kind == "end" else repr(token.text)

    def _nest(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError(f"nested more than {MAX_DEPTH} deep", self.current.position)

    def parse(self) -> Node:
        node = self.expr()
        if self.current.kind != "end":
            raise ExpressionError(
                f"expected an operator, found {self._describe()}", self.current.position
            )
        return node

    def expr(self) -> Node:
        node = self.product()
        while True:
            op = self.current.text if self.current.kind == "op" else ""
            if op not in ("+", "-"):
                return node
            self.index += 1
            node = Binary("+" if op == "+" else "-", node, self.product())

    def product(self) -> Node:
        node = self.unary()
        while True:
            op = self.current.text if self.current.kind == "op" else ""
            if op not in ("*", "/"):
                return node
            self.index += 1
            node = Binary("*" if op == "*" else "/", node, self.unary())

    def unary(self) -> Node:
        if self.take("-"):
            self._nest()
            operand = self.unary()
            self.depth -= 1
            return Negate(operand)
        return self.primary()

    def primary(self) -> Node:
        token = self.current
        if token.kind == "number":
            self.index += 1
            return Number(Decimal(token.text))
        if token.kind == "name":
            self.index += 1
            if token.text in _FUNCTIONS and self.take("("):
                self._nest()
                left = self.expr()
                self.expect(",")
                right = self.expr()
                self.expect(")")
                self.depth -= 1
                return Call("min" if token.text == "min" else "max", left, right)
            return Name(token.text)
        if self.take("("):
            self._nest()
            node = self.expr()
            self.expect(")")
            self.depth -= 1
            return node
        if token.kind == "end":
            raise ExpressionError("the expression ends too early", token.position)
        raise ExpressionError(
            f"expected a number, a name or '(', found {token.text!r}", token.position
        )


def _evaluate(node: Node, variables: Mapping[str, Decimal]) -> Decimal | None:
    if isinstance(node, Number):
        return node.value
    if isinstance(node, Name):
        return variables.get(node.name)
    if isinstance(node, Negate):
        value = _evaluate(node.operand, variables)
        return None if value is None else -value
    left = _evaluate(node.left, variables)
    if left is None:
        return None
    right = _evaluate(node.right, variables)
    if right is None:
        return None
    if isinstance(node, Call):
        return min(left, right) if node.function == "min" else max(left, right)
    if node.op == "+":
        return left + right
    if node.op == "-":
        return left - right
    if node.op == "*":
        return left * right
    return left / right


def _names(node: Node) -> frozenset[str]:
    if isinstance(node, Name):
        return frozenset({node.name})
    if isinstance(node, Number):
        return frozenset()
    if isinstance(node, Negate):
        return _names(node.operand)
    return _names(node.left) | _names(node.right)


@dataclass(frozen=True, slots=True)
class Expression:
    """A parsed expression: evaluate it as often as needed."""

    text: str
    tree: Node
    variables: frozenset[str]

    def evaluate(self, variables: Mapping[str, Decimal]) -> Decimal | None:
        """The value for these variables; None when one is missing or the arithmetic fails."""
        with localcontext(_CONTEXT):
            try:
                result = _evaluate(self.tree, variables)
            except (DivisionByZero, InvalidOperation, Overflow):
                return None  # x / 0 (and 0 / 0), or a figure beyond Decimal's range
            # Normalise to the context: `+` applies its precision and rounding.
            return None if result is None else +result


def parse(text: str) -> Expression:
    """Parse an expression once; raises ExpressionError naming the position of the problem."""
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"an expression has at most {MAX_LENGTH} characters", MAX_LENGTH)
    if not text.strip():
        raise ExpressionError("the expression is empty", 0)
    tree = _Parser(text).parse()
    return Expression(text, tree, _names(tree))
