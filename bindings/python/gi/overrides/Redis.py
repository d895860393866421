# SPDX-License-Identifier: LGPL-2.1-or-later
"""PyGObject overrides for the ``Redis`` namespace (redispool).

Loaded by PyGObject on ``from gi.repository import Redis`` when this file is
in a ``gi/overrides`` directory on the path: the interpreter's own (where
meson installs it) or ``<dir>/gi/overrides`` for any ``<dir>`` on
``sys.path`` (``PYTHONPATH=bindings/python`` in the source tree).

What it adds, in the spirit of redis-py; the introspected C-level API stays as
it is (``command_sync``, ``command_async``, ``Redis.Batch``, ...)::

    pool = Redis.Pool.new_sync('redis://127.0.0.1:6379/0', None)
    pool.command('SET', 'k', b'\\x00v', 5)           # str/bytes/int/float args
    pool.command('GET', 'k').value                  # b'\\x00v'
    pool.pipeline([['INCR', 'n'], ['GET', 'n']])    # list of Redis.Reply
    pool.get_info()['connections'][0]['state']      # a dict, not a GVariant
    sub = Redis.Subscriber.new_sync('redis://127.0.0.1:6379', None)
    sub.subscribe('news', b'raw\\xff')               # str/bytes names

Arguments: ``str`` (UTF-8), ``bytes``, ``bytearray``, ``memoryview``,
``GLib.Bytes``, ``int`` and ``float`` (``repr()``, as redis-py sends them);
``bool`` and ``None`` are refused, as redis-py does. Every call goes through
the binary-safe ``command_bytes_sync()``.

Reply values (``Redis.Reply.value``), decided like redis-py with
``decode_responses=False``: bulk strings are ``bytes`` (binary data stays
binary); status replies are ``str`` (``'OK'``, ``'PONG'``: protocol text,
decoded with ``surrogateescape`` so no byte is lost); integers ``int``; nil
``None``; arrays ``list`` (recursively); an error reply is a
``Redis.ReplyError`` *instance*, returned, not raised (as redis-py returns
them inside pipelines). ``Reply.decoded()`` gives the same with bulk strings
decoded too, like ``decode_responses=True``.

Failed calls raise ``GLib.Error`` as the C API does; match them with
``e.matches(Redis.Error.quark(), Redis.Error.SERVER)`` or
``Redis.error_matches(e, Redis.Error.SERVER)``. (``e.matches(Redis.Error,
...)``, the GJS spelling, is always False in Python.)
"""

import reprlib

from gi.repository import GLib

from ..module import get_introspection_module
from ..overrides import override

Redis = get_introspection_module('Redis')

__all__ = []

_KIND = Redis.ReplyKind
_TEXT_KINDS = (_KIND.STRING, _KIND.STATUS, _KIND.ERROR)


# -- arguments -------------------------------------------------------------

def _encode_arg(arg):
    """One command argument as a GLib.Bytes (redis-py's Encoder rules)."""
    if isinstance(arg, GLib.Bytes):
        return arg
    if isinstance(arg, bytes):
        data = arg
    elif isinstance(arg, str):
        data = arg.encode('utf-8')
    elif isinstance(arg, (bytearray, memoryview)):
        data = bytes(arg)
    elif isinstance(arg, bool):
        raise TypeError("Invalid argument of type 'bool': convert it to bytes, "
                        "str, int or float first")
    elif isinstance(arg, int):
        data = int.__repr__(arg).encode('ascii')
    elif isinstance(arg, float):
        data = float.__repr__(arg).encode('ascii')
    else:
        raise TypeError("Invalid argument of type %r: expected bytes, str, int or float"
                        % type(arg).__name__)
    return GLib.Bytes.new(data)


def _encode_argv(args):
    if len(args) == 1 and isinstance(args[0], (list, tuple)):
        args = args[0]
    if not args:
        raise TypeError('a command needs at least its name')
    return [_encode_arg(a) for a in args]


def _batch(commands):
    """A Redis.Batch from a Redis.Batch or an iterable of argument lists."""
    if isinstance(commands, Redis.Batch):
        return commands
    batch = Redis.Batch.new()
    for argv in commands:
        if isinstance(argv, (str, bytes)):
            raise TypeError('pipeline() takes a list of argument lists, '
                            'e.g. [["SET", "k", "v"], ["GET", "k"]]')
        batch.add_bytes(_encode_argv(list(argv)))
    return batch


# -- replies ---------------------------------------------------------------

class ReplyError(Exception):
    """An error reply of the server (``-WRONGTYPE Operation ...``) as a value.

    ``Redis.Reply.value`` returns, not raises, one of these for an
    error-kind reply. ``prefix`` is the first word (``'WRONGTYPE'``, or None),
    ``message`` the whole text (as in ``GLib.Error.message`` for the same
    reply) and ``data`` the raw bytes. Equal when the bytes are equal.
    """

    def __init__(self, data, prefix=None):
        if isinstance(data, str):
            data = data.encode('utf-8')
        self.data = bytes(data)
        self.message = self.data.decode('utf-8', 'backslashreplace')
        if prefix is None:
            word = self.message.split(' ', 1)[0]
            prefix = word if word and word.isupper() else None
        self.prefix = prefix
        super().__init__(self.message)

    def __eq__(self, other):
        if isinstance(other, ReplyError):
            return self.data == other.data
        return NotImplemented

    def __hash__(self):
        return hash((ReplyError, self.data))

    def __repr__(self):
        return 'Redis.ReplyError(%r)' % self.message


__all__.append('ReplyError')


class Reply(Redis.Reply):
    """Redis.Reply with native Python access (see the module docs)."""

    def _text(self):
        return self.get_bytes().get_data()

    def _scalar(self, kind, decode):
        if kind == _KIND.STRING:
            data = self._text()
            return data.decode(*decode) if decode else data
        if kind == _KIND.STATUS:
            return self._text().decode('utf-8', 'surrogateescape')
        if kind == _KIND.INTEGER:
            return self.get_integer()
        if kind == _KIND.NIL:
            return None
        if kind == _KIND.ERROR:
            return ReplyError(self._text(), self.get_error_prefix())
        raise ValueError('unknown reply kind %r' % kind)

    def _native(self, decode):
        # Iterative: a reply may nest deeper (max-depth up to 1024) than
        # Python's recursion limit allows.
        result = []
        stack = [(iter((self,)), result)]
        while stack:
            elements, into = stack[-1]
            reply = next(elements, None)
            if reply is None:
                stack.pop()
                continue
            kind = reply.get_kind()
            if kind == _KIND.ARRAY:
                into.append([])
                stack.append((iter(reply.get_elements()), into[-1]))
            else:
                into.append(reply._scalar(kind, decode))
        return result[0]

    @property
    def value(self):
        """The reply as a Python value: bytes, str (status), int, None, list
        (recursively) or a Redis.ReplyError instance. Computed on each access."""
        return self._native(None)

    def decoded(self, encoding='utf-8', errors='strict'):
        """Like ``value``, with bulk strings decoded (redis-py's
        ``decode_responses=True``)."""
        return self._native((encoding, errors))

    def _check_kind(self, what, kinds):
        kind = self.get_kind()
        if kind not in kinds:
            raise TypeError('%s of a Redis.Reply of kind %s' % (what, kind.value_nick.upper()))
        return kind

    def __bool__(self):
        # A reply is an object: test .value or is_nil() for its content.
        return True

    def __len__(self):
        """Elements of an array; bytes of a string, status or error."""
        kind = self._check_kind('len()', _TEXT_KINDS + (_KIND.ARRAY,))
        if kind == _KIND.ARRAY:
            return self.get_n_elements()
        return len(self._text())

    def __iter__(self):
        """The elements of an array, as Redis.Reply."""
        self._check_kind('iteration', (_KIND.ARRAY,))
        return iter(self.get_elements())

    def __getitem__(self, index):
        """An element (or a list of elements for a slice) of an array."""
        self._check_kind('indexing', (_KIND.ARRAY,))
        n = self.get_n_elements()
        if isinstance(index, slice):
            return [self.get_element(i) for i in range(*index.indices(n))]
        i = index.__index__()
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError('Redis.Reply index out of range')
        return self.get_element(i)

    def __bytes__(self):
        """The raw bytes of a string, status or error; an integer's digits."""
        kind = self._check_kind('bytes()', _TEXT_KINDS + (_KIND.INTEGER,))
        if kind == _KIND.INTEGER:
            return b'%d' % self.get_integer()
        return self._text()

    def __int__(self):
        """An integer reply, or a string or status holding an integer."""
        kind = self._check_kind('int()', (_KIND.INTEGER, _KIND.STRING, _KIND.STATUS))
        if kind == _KIND.INTEGER:
            return self.get_integer()
        return int(self._text())

    def __float__(self):
        """An integer reply, or a string or status holding a number."""
        kind = self._check_kind('float()', (_KIND.INTEGER, _KIND.STRING, _KIND.STATUS))
        if kind == _KIND.INTEGER:
            return float(self.get_integer())
        return float(self._text())

    def __str__(self):
        """Text of a string, status or error (undecodable bytes as \\xNN),
        an integer's digits; the C to_string() rendering for nil and arrays."""
        kind = self.get_kind()
        if kind in _TEXT_KINDS:
            return self._text().decode('utf-8', 'backslashreplace')
        if kind == _KIND.INTEGER:
            return str(self.get_integer())
        return self.to_string()

    def __repr__(self):
        return 'Redis.Reply(%s, %s)' % (self.get_kind().value_nick.upper(),
                                        reprlib.repr(self.value))

    def __eq__(self, other):
        """Equal to another reply with an equal value, or to a native value
        (reply == b'v', reply == 3, reply == None for nil)."""
        if isinstance(other, Redis.Reply):
            other = other.value
        return self.value == other

    def __ne__(self, other):
        return not self == other

    def __hash__(self):
        # Equal replies and values hash alike; arrays are unhashable (lists).
        return hash(self.value)


Reply = override(Reply)
__all__.append('Reply')


# -- clients ---------------------------------------------------------------

class Client(Redis.Client):
    """Redis.Client (Redis.Pool, Redis.Connection and leases) with redis-py
    style calls; the C-level methods are unchanged."""

    def command(self, *args, cancellable=None):
        """Send one command and return its Redis.Reply.

        ``pool.command('SET', 'k', b'v', 5)`` or ``pool.command(['GET', 'k'])``.
        Raises GLib.Error as ``command_bytes_sync()`` does (an error reply
        is ``Redis.Error.SERVER``)."""
        return self.command_bytes_sync(_encode_argv(args), cancellable)

    def pipeline(self, commands, cancellable=None):
        """Send a list of argument lists (or a Redis.Batch) in one round trip;
        return the list of Redis.Reply. Error replies are elements, not
        exceptions; a failed call raises GLib.Error (use
        ``pipeline_partial()`` for what arrived before a failure)."""
        return list(self.pipeline_sync(_batch(commands), cancellable))

    def pipeline_partial(self, commands, cancellable=None):
        """Like ``pipeline()``, never raising: ``(replies, error_or_None,
        n_written)`` as ``pipeline_partial_sync()``."""
        replies, failure, n_written = self.pipeline_partial_sync(_batch(commands), cancellable)
        return list(replies), failure, n_written

    def transaction(self, commands, cancellable=None):
        """Run a list of argument lists in MULTI/EXEC; return the list of
        Redis.Reply (one per command). Raises GLib.Error
        (``TRANSACTION_ABORTED``, ``WATCH_FAILED``, ...) as
        ``transaction_sync()``."""
        return list(self.transaction_sync(_batch(commands), cancellable))


Client = override(Client)
__all__.append('Client')


class PoolInfo(dict):
    """``Redis.Pool.get_info()``: a dict of native values. ``unpack()`` and
    ``get_type_string()`` remain for code written against the GVariant."""

    def __init__(self, variant):
        super().__init__(variant.unpack())
        self.variant = variant

    def unpack(self):
        return self.variant.unpack()

    def get_type_string(self):
        return self.variant.get_type_string()


class Pool(Redis.Pool):
    # Keyword construction (Redis.Pool(host=..., pool_size=3)) does not call
    # init(): init_async() must stay possible on such an object, and a pool
    # that was never initialised connects on first use.

    def get_info(self):
        """Pool statistics as a dict (``connections`` a list of dicts)."""
        return PoolInfo(super().get_info())


Pool = override(Pool)
__all__.append('Pool')


# -- pub/sub ---------------------------------------------------------------

def _encode_names(names):
    """Channel or pattern names (str, bytes-like or GLib.Bytes) as a list of
    GLib.Bytes; one list or tuple argument is taken as the names."""
    if len(names) == 1 and isinstance(names[0], (list, tuple)):
        names = names[0]
    out = []
    for name in names:
        if isinstance(name, (bool, int, float)) or name is None:
            raise TypeError('Invalid name of type %r: expected str or bytes'
                            % type(name).__name__)
        out.append(_encode_arg(name))
    return out


def _subscription_call(kind, subscribe, doc):
    def call(self, *names, cancellable=None):
        encoded = _encode_names(names)
        if subscribe:
            if not encoded:
                raise TypeError('subscribing needs at least one name')
            return self.subscribe_bytes_sync(kind, encoded, cancellable)
        return self.unsubscribe_bytes_sync(kind, encoded, cancellable)
    call.__doc__ = doc
    return call


_SUB = Redis.SubscriptionKind


class Subscriber(Redis.Subscriber):
    """Redis.Subscriber with redis-py style calls taking names as ``str``,
    ``bytes`` or ``GLib.Bytes`` (binary-safe): ``sub.subscribe('news',
    b'\\xffraw')``, ``sub.unsubscribe()`` for every channel. They block
    like the ``*_sync()`` methods (which stay, with the async ones) and
    raise GLib.Error as they do. Messages arrive through the ``message``
    signal: ``sub.connect('message::news', cb)``."""

    subscribe = _subscription_call(
        _SUB.CHANNEL, True, 'SUBSCRIBE to channels (at least one).')
    psubscribe = _subscription_call(
        _SUB.PATTERN, True, 'PSUBSCRIBE to glob-style patterns (at least one).')
    ssubscribe = _subscription_call(
        _SUB.SHARD, True, 'SSUBSCRIBE to shard channels (at least one).')
    unsubscribe = _subscription_call(
        _SUB.CHANNEL, False, 'UNSUBSCRIBE from channels; none: from all.')
    punsubscribe = _subscription_call(
        _SUB.PATTERN, False, 'PUNSUBSCRIBE from patterns; none: from all.')
    sunsubscribe = _subscription_call(
        _SUB.SHARD, False, 'SUNSUBSCRIBE from shard channels; none: from all.')


Subscriber = override(Subscriber)
__all__.append('Subscriber')


# -- errors ----------------------------------------------------------------

def error_matches(error, code=None):
    """True if ``error`` is a GLib.Error of the Redis.Error domain (and of
    ``code``, when given): ``Redis.error_matches(e, Redis.Error.SERVER)``."""
    if not isinstance(error, GLib.Error):
        return False
    quark = Redis.error_quark()
    if code is None:
        return error.matches(quark, error.code)
    return error.matches(quark, code)


__all__.append('error_matches')
