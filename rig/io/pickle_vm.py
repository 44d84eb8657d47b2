"""rig's own pickle interpreter: reads untrusted pickles within fixed budgets, calling only allowed callables.

CPython's ``pickle.Unpickler`` is written in C and trusts its input in ways a hostile file can use:
a ``LONG_BINPUT`` index of 2^28 makes it allocate a memo table of gigabytes, a ``FRAME`` length
near 2^64 escapes as ``OverflowError``, and ``BUILD`` hands whatever state the file holds to an
object's ``__setstate__`` (for numpy that is C code that segfaults on forged state). This module
interprets the opcodes itself (protocols 0-5) in plain Python:

- every global (``GLOBAL`` / ``STACK_GLOBAL`` / ``INST``) goes through ``find_class``, which the
  caller supplies (rig's allow-lists); ``REDUCE`` / ``NEWOBJ`` / ``OBJ`` call only what it returned;
- ``BUILD`` is honoured only on instances of :class:`StateRecord` (rig's stand-ins, whose
  ``__setstate__`` just stores the state); on anything else it is refused;
- ``SETITEM(S)`` / ``APPEND(S)`` only target real dicts / lists; extensions (``EXT*``) and
  out-of-band buffers are refused;
- :class:`PickleBudget` caps opcodes, memo entries, objects made, ``MARK`` nesting and lengths
  (a length is also never trusted beyond the bytes that are left in the file).

Every failure is a ``CheckpointError`` (or ``UnsafeFileError`` for refused globals / operations)
whose message starts with the file's label and gives the byte offset.
"""

from __future__ import annotations

import codecs
import reprlib
import struct
from dataclasses import dataclass
from typing import Any, Callable

from rig.errors import CheckpointError, RigError, UnsafeFileError

_short = reprlib.Repr()
_short.maxstring = 60
_short.maxother = 60
_short.maxlevel = 3


def short_repr(obj: Any) -> str:
    """A bounded ``repr`` for error messages about untrusted values (never recurses deeply)."""
    try:
        return _short.repr(obj)
    except Exception:  # noqa: BLE001 - a repr of hostile data must not raise
        return f"<{type(obj).__name__}>"


@dataclass(frozen=True)
class PickleBudget:
    """Hard limits for one pickle. Defaults fit every real rig / FLAME / NVIDIA file with a wide margin.

    max_opcodes: opcodes executed. max_memo: memo entries. max_objects: containers and call results
    made. max_depth: ``MARK`` nesting. max_length: bytes of one string / bytes / long / frame.
    """

    max_opcodes: int = 20_000_000
    max_memo: int = 1_000_000
    max_objects: int = 2_000_000
    max_depth: int = 100
    max_length: int = 1 << 31


class StateRecord:
    """Base of the stand-in classes that accept ``BUILD``: their ``__setstate__`` only stores data."""

    def __setstate__(self, state: Any) -> None:  # pragma: no cover - subclasses override
        raise NotImplementedError


class _Mark:
    """The ``MARK`` sentinel on the stack."""


_MARK = _Mark()

FindClass = Callable[[str, str], Any]
PersistentLoad = Callable[[Any], Any]


class PickleMachine:
    """Interprets the pickles in ``data`` one after another (``load`` returns the next one)."""

    def __init__(self, data: bytes, find_class: FindClass, label: str, persistent_load: PersistentLoad | None = None,
                 budget: PickleBudget = PickleBudget(), pos: int = 0):
        self.data = memoryview(bytes(data))
        self.pos = pos
        self.label = label
        self._find_class = find_class
        self._persistent_load = persistent_load
        self.budget = budget
        self._callables: dict[int, Any] = {}  # id -> object find_class returned (kept alive here)
        self._opcodes = 0
        self._objects = 0

    # ------------------------------------------------------------------ errors and reading

    def _bad(self, what: str) -> CheckpointError:
        return CheckpointError(f"{self.label}: not a readable pickle ({what} at byte {self.pos})")

    def _unsafe(self, what: str) -> UnsafeFileError:
        return UnsafeFileError(f"{self.label}: refused to load: {what} (nothing was executed)")

    def _read(self, n: int) -> memoryview:
        if n < 0 or n > self.budget.max_length:
            raise self._bad(f"length {n} out of range")
        end = self.pos + n
        if end > len(self.data):
            raise self._bad(f"truncated: {n} bytes wanted, {len(self.data) - self.pos} left")
        out = self.data[self.pos:end]
        self.pos = end
        return out

    def _named(self, e: RigError) -> RigError:
        """A stand-in's own refusal, with the file's label in front when it does not name it yet."""
        if self.label in str(e):
            return e
        return type(e)(f"{self.label}: {e}")

    def _uint(self, n: int) -> int:
        return int.from_bytes(self._read(n), "little", signed=False)

    def _readline(self) -> bytes:
        raw = self.data.obj  # type: ignore[attr-defined]
        end = raw.find(b"\n", self.pos, self.pos + 1_000_000)
        if end < 0:
            raise self._bad("unterminated text argument")
        line = bytes(self.data[self.pos:end])
        self.pos = end + 1
        return line

    def _made(self, obj: Any) -> Any:
        self._objects += 1
        if self._objects > self.budget.max_objects:
            raise self._bad(f"more than {self.budget.max_objects} objects")
        return obj

    # ------------------------------------------------------------------ the interpreter

    def load(self) -> Any:
        """Run opcodes up to the next ``STOP`` and return the object it leaves."""
        stack: list[Any] = []
        marks: list[list[Any]] = []
        memo: dict[int, Any] = {}
        budget = self.budget

        def pop_mark() -> list[Any]:
            nonlocal stack
            if not marks:
                raise self._bad("no MARK to pop to")
            items = stack
            stack = marks.pop()
            return items

        def top() -> Any:
            if not stack:
                raise self._bad("stack underflow")
            return stack[-1]

        def pop() -> Any:
            if not stack:
                raise self._bad("stack underflow")
            return stack.pop()

        def put(index: int) -> None:
            if index < 0:
                raise self._bad("negative memo index")
            if index not in memo and len(memo) >= budget.max_memo:
                raise self._bad(f"more than {budget.max_memo} memo entries")
            memo[index] = top()

        def get(index: int) -> None:
            try:
                stack.append(memo[index])
            except KeyError:
                raise self._bad(f"memo entry {index} was never stored") from None

        def call(func: Any, args: Any) -> Any:
            if id(func) not in self._callables or self._callables[id(func)] is not func:
                raise self._unsafe(f"the pickle calls a {type(func).__name__} that is not on the allow-list")
            if not isinstance(args, tuple):
                raise self._bad("call arguments are not a tuple")
            try:
                return self._made(func(*args))
            except RigError as e:
                raise self._named(e) from None
            except (Exception, RecursionError) as e:  # noqa: BLE001 - an allowed callable refused the file's data
                raise self._bad(f"{getattr(func, '__name__', 'callable')}() failed: {type(e).__name__}: "
                                f"{short_repr(str(e))}") from None

        def find(module: str, name: str) -> Any:
            obj = self._find_class(module, name)
            self._callables[id(obj)] = obj
            return obj

        def text(raw: bytes | memoryview, encoding: str = "utf-8") -> str:
            try:
                return bytes(raw).decode(encoding, "surrogatepass" if encoding == "utf-8" else "strict")
            except UnicodeDecodeError as e:
                raise self._bad(f"undecodable text ({e.reason})") from None

        def set_items(target: Any, items: list[Any]) -> None:
            if not isinstance(target, dict):
                raise self._unsafe(f"SETITEMS on a {type(target).__name__}")
            if len(items) % 2:
                raise self._bad("odd number of items for SETITEMS")
            try:
                for i in range(0, len(items), 2):
                    target[items[i]] = items[i + 1]
            except TypeError as e:
                raise self._bad(f"unusable dict key ({e})") from None

        def hashable_set(items: list[Any], cls: type) -> Any:
            try:
                return self._made(cls(items))
            except TypeError as e:
                raise self._bad(f"unusable set item ({e})") from None

        while True:
            self._opcodes += 1
            if self._opcodes > budget.max_opcodes:
                raise self._bad(f"more than {budget.max_opcodes} opcodes")
            if self.pos >= len(self.data):
                raise self._bad("truncated: no STOP")
            op = self.data[self.pos]
            self.pos += 1
            if op == 0x80:  # PROTO
                if self._uint(1) > 5:
                    raise self._bad("unsupported pickle protocol")
            elif op == 0x95:  # FRAME: a length hint only; check it against what is left
                n = self._uint(8)
                if n > len(self.data) - self.pos:
                    raise self._bad(f"FRAME length {n} exceeds the {len(self.data) - self.pos} bytes left")
            elif op == 0x2E:  # STOP
                if len(stack) != 1 or marks:
                    raise self._bad("STOP with an unbalanced stack")
                return stack[0]
            elif op == 0x28:  # MARK
                if len(marks) >= budget.max_depth:
                    raise self._bad(f"MARK nesting deeper than {budget.max_depth}")
                marks.append(stack)
                stack = []
            elif op == 0x30:  # POP
                if stack:
                    stack.pop()
                else:
                    pop_mark()
            elif op == 0x31:  # POP_MARK
                pop_mark()
            elif op == 0x32:  # DUP
                stack.append(top())
            # ---------------------------------------------------------- scalars
            elif op == 0x4E:  # NONE
                stack.append(None)
            elif op == 0x88:  # NEWTRUE
                stack.append(True)
            elif op == 0x89:  # NEWFALSE
                stack.append(False)
            elif op == 0x4B:  # BININT1
                stack.append(self._uint(1))
            elif op == 0x4D:  # BININT2
                stack.append(self._uint(2))
            elif op == 0x4A:  # BININT
                stack.append(int.from_bytes(self._read(4), "little", signed=True))
            elif op in (0x8A, 0x8B):  # LONG1, LONG4
                n = self._uint(1) if op == 0x8A else int.from_bytes(self._read(4), "little", signed=True)
                stack.append(int.from_bytes(self._read(n), "little", signed=True))
            elif op == 0x47:  # BINFLOAT
                stack.append(struct.unpack(">d", self._read(8))[0])
            elif op in (0x49, 0x4C, 0x46):  # INT, LONG, FLOAT (text)
                line = self._readline()
                try:
                    if op == 0x49 and line in (b"00", b"01"):
                        stack.append(line == b"01")
                    elif op == 0x46:
                        stack.append(float(line))
                    else:
                        stack.append(int(line[:-1] if op == 0x4C and line.endswith(b"L") else line))
                except ValueError:
                    raise self._bad("malformed number") from None
            # ---------------------------------------------------------- strings and bytes
            elif op in (0x54, 0x55):  # BINSTRING, SHORT_BINSTRING: Python 2 str, read as latin-1 text
                n = self._uint(1) if op == 0x55 else int.from_bytes(self._read(4), "little", signed=True)
                stack.append(text(self._read(n), "latin1"))
            elif op == 0x53:  # STRING (quoted, escaped)
                line = self._readline()
                if len(line) < 2 or line[0] != line[-1] or line[:1] not in (b"'", b'"'):
                    raise self._bad("malformed STRING")
                try:
                    stack.append(codecs.escape_decode(line[1:-1])[0].decode("latin1"))
                except ValueError:
                    raise self._bad("malformed STRING escape") from None
            elif op == 0x56:  # UNICODE (raw-unicode-escape line)
                try:
                    stack.append(self._readline().decode("raw-unicode-escape"))
                except UnicodeDecodeError:
                    raise self._bad("malformed UNICODE") from None
            elif op in (0x58, 0x8C, 0x8D):  # BINUNICODE, SHORT_BINUNICODE, BINUNICODE8
                n = self._uint({0x58: 4, 0x8C: 1, 0x8D: 8}[op])
                stack.append(text(self._read(n)))
            elif op in (0x42, 0x43, 0x8E):  # BINBYTES, SHORT_BINBYTES, BINBYTES8
                n = self._uint({0x42: 4, 0x43: 1, 0x8E: 8}[op])
                stack.append(bytes(self._read(n)))
            elif op == 0x96:  # BYTEARRAY8
                stack.append(bytearray(self._read(self._uint(8))))
            # ---------------------------------------------------------- containers
            elif op == 0x29:  # EMPTY_TUPLE
                stack.append(())
            elif op in (0x85, 0x86, 0x87):  # TUPLE1..3
                n = op - 0x84
                if len(stack) < n:
                    raise self._bad("stack underflow")
                items = tuple(stack[-n:])
                del stack[-n:]
                stack.append(self._made(items))
            elif op == 0x74:  # TUPLE
                items = pop_mark()
                stack.append(self._made(tuple(items)))
            elif op == 0x5D:  # EMPTY_LIST
                stack.append(self._made([]))
            elif op == 0x6C:  # LIST
                items = pop_mark()
                stack.append(self._made(items))
            elif op == 0x7D:  # EMPTY_DICT
                stack.append(self._made({}))
            elif op == 0x64:  # DICT
                items = pop_mark()
                d = self._made({})
                set_items(d, items)
                stack.append(d)
            elif op == 0x8F:  # EMPTY_SET
                stack.append(self._made(set()))
            elif op == 0x91:  # FROZENSET
                stack.append(hashable_set(pop_mark(), frozenset))
            elif op == 0x90:  # ADDITEMS
                items = pop_mark()
                target = top()
                if not isinstance(target, set):
                    raise self._unsafe(f"ADDITEMS on a {type(target).__name__}")
                try:
                    target.update(items)
                except TypeError as e:
                    raise self._bad(f"unusable set item ({e})") from None
            elif op == 0x61:  # APPEND
                value = pop()
                target = top()
                if not isinstance(target, list):
                    raise self._unsafe(f"APPEND on a {type(target).__name__}")
                target.append(value)
            elif op == 0x65:  # APPENDS
                items = pop_mark()
                target = top()
                if not isinstance(target, list):
                    raise self._unsafe(f"APPENDS on a {type(target).__name__}")
                target.extend(items)
            elif op == 0x73:  # SETITEM
                value = pop()
                key = pop()
                set_items(top(), [key, value])
            elif op == 0x75:  # SETITEMS
                items = pop_mark()
                set_items(top(), items)
            # ---------------------------------------------------------- memo
            elif op == 0x70:  # PUT
                try:
                    put(int(self._readline()))
                except ValueError:
                    raise self._bad("malformed PUT index") from None
            elif op == 0x71:  # BINPUT
                put(self._uint(1))
            elif op == 0x72:  # LONG_BINPUT
                put(self._uint(4))
            elif op == 0x94:  # MEMOIZE
                put(len(memo))
            elif op == 0x67:  # GET
                try:
                    get(int(self._readline()))
                except ValueError:
                    raise self._bad("malformed GET index") from None
            elif op == 0x68:  # BINGET
                get(self._uint(1))
            elif op == 0x6A:  # LONG_BINGET
                get(self._uint(4))
            # ---------------------------------------------------------- globals and calls
            elif op == 0x63:  # GLOBAL
                module = text(self._readline())
                name = text(self._readline())
                stack.append(find(module, name))
            elif op == 0x93:  # STACK_GLOBAL
                name = pop()
                module = pop()
                if not isinstance(module, str) or not isinstance(name, str):
                    raise self._bad("STACK_GLOBAL needs two strings")
                stack.append(find(module, name))
            elif op == 0x52:  # REDUCE
                args = pop()
                func = pop()
                stack.append(call(func, args))
            elif op == 0x81:  # NEWOBJ: allowed classes are constructed by calling them
                args = pop()
                cls = pop()
                stack.append(call(cls, args))
            elif op == 0x92:  # NEWOBJ_EX
                kwargs = pop()
                args = pop()
                cls = pop()
                if kwargs:
                    raise self._unsafe("NEWOBJ_EX with keyword arguments")
                stack.append(call(cls, args))
            elif op == 0x69:  # INST
                module = text(self._readline())
                name = text(self._readline())
                cls = find(module, name)
                stack.append(call(cls, tuple(pop_mark())))
            elif op == 0x6F:  # OBJ
                items = pop_mark()
                if not items:
                    raise self._bad("OBJ without a class")
                stack.append(call(items[0], tuple(items[1:])))
            elif op == 0x62:  # BUILD
                state = pop()
                inst = top()
                if not isinstance(inst, StateRecord):
                    raise self._unsafe(f"BUILD (set state) on a {type(inst).__name__}")
                try:
                    inst.__setstate__(state)
                except RigError as e:
                    raise self._named(e) from None
                except Exception as e:  # noqa: BLE001
                    raise self._bad(f"state of {type(inst).__name__} refused: {type(e).__name__}") from None
            elif op in (0x50, 0x51):  # PERSID, BINPERSID
                pid = text(self._readline(), "ascii") if op == 0x50 else pop()
                if self._persistent_load is None:
                    raise self._unsafe(f"unexpected persistent id {short_repr(pid)}")
                try:
                    stack.append(self._persistent_load(pid))
                except RigError as e:
                    raise self._named(e) from None
                except Exception as e:  # noqa: BLE001
                    raise self._bad(f"persistent id {short_repr(pid)} refused: {type(e).__name__}") from None
            elif op in (0x82, 0x83, 0x84):  # EXT1, EXT2, EXT4
                raise self._unsafe("extension-registry opcode (EXT)")
            elif op in (0x97, 0x98):  # NEXT_BUFFER, READONLY_BUFFER
                raise self._unsafe("out-of-band buffer opcode")
            else:
                self.pos -= 1
                raise self._bad(f"unknown opcode 0x{op:02x}")
