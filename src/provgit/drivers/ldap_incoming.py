"""A bound on each message libldap takes in for python-ldap's reads.

libldap reads an LDAP message whole before python-ldap sees any of it, and
allocates it at the size its header says: the bind's answer, the root DSE's
(whether the server offers content synchronisation) and each entry of a read
were bounded only by the request deadline. liblber has the bound
(`LBER_SB_OPT_SET_MAX_INCOMING` on the connection's sockbuf: a message whose
length says more is refused as its header arrives, errno ERANGE, nothing
allocated; slapd bounds its own input so), but python-ldap offers no way to
it. It is set here through ctypes: the connection's `LDAP *` is the first
field of python-ldap's connection object (its `LDAPObject` struct, since
python-ldap 2), checked (the URI libldap gives through it is the one python-ldap gives); the
sockbuf is asked of libldap (`LDAP_OPT_SOCKBUF`) and set before the bind, so
it bounds every message on the connection. The functions are looked up
through python-ldap's own module, so they are those of the libldap it uses.
Where any of that does not hold (not CPython, a python-ldap of another
layout, a libldap without the option), nothing is set: the deadline bounds
them, as before, and `cap_incoming` says so.
"""

from __future__ import annotations

import ctypes
import importlib
import sys
import sysconfig
from typing import Any

LDAP_OPT_SOCKBUF = 0x5008
LDAP_OPT_URI = 0x5006
LBER_SB_OPT_GET_MAX_INCOMING = 13
LBER_SB_OPT_SET_MAX_INCOMING = 14


def _libraries() -> Any:
    """python-ldap's extension module as a library: its libldap and liblber
    resolve through it. None when that is not possible."""
    if (
        sys.implementation.name != "cpython"
        or hasattr(sys, "gettotalrefcount")
        or sysconfig.get_config_var("Py_GIL_DISABLED")
    ):
        # Another object layout: PyPy; a debug or free-threaded build's longer header.
        return None
    try:
        import ldap

        if int(str(ldap.__version__).split(".")[0]) < 3:
            return None
        # The extension module python-ldap's calls go through (no stubs: by name).
        lib = ctypes.CDLL(importlib.import_module("_ldap").__file__)
        lib.ldap_get_option.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
        lib.ber_sockbuf_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
        lib.ldap_memfree.argtypes = [ctypes.c_char_p]
        return lib
    except (ImportError, OSError, AttributeError, ValueError):
        return None


_LIB: Any = None
_LOOKED = False


def cap_incoming(conn: Any, limit: int) -> bool:
    """Refuse any message over `limit` bytes on python-ldap connection `conn`
    (initialized, not bound yet). False when it cannot be set."""
    global _LIB, _LOOKED
    if not _LOOKED:
        _LIB, _LOOKED = _libraries(), True
    lib = _LIB
    inner = getattr(conn, "_l", None)
    if lib is None or inner is None:
        return False
    # PyObject_HEAD (reference count, type), then `LDAP *ldap`.
    ld = ctypes.c_void_p.from_address(id(inner) + 2 * ctypes.sizeof(ctypes.c_void_p)).value
    if not ld:
        return False
    said = ctypes.c_char_p()
    if lib.ldap_get_option(ld, LDAP_OPT_URI, ctypes.byref(said)) != 0 or said.value is None:
        return False
    same = said.value.decode("utf-8", "replace") == conn.get_option(LDAP_OPT_URI)
    lib.ldap_memfree(said)
    if not same:
        return False
    sockbuf = ctypes.c_void_p()
    if lib.ldap_get_option(ld, LDAP_OPT_SOCKBUF, ctypes.byref(sockbuf)) != 0 or not sockbuf:
        return False
    wanted = ctypes.c_ulong(limit)
    if lib.ber_sockbuf_ctrl(sockbuf, LBER_SB_OPT_SET_MAX_INCOMING, ctypes.byref(wanted)) != 1:
        return False
    now = ctypes.c_ulong()
    lib.ber_sockbuf_ctrl(sockbuf, LBER_SB_OPT_GET_MAX_INCOMING, ctypes.byref(now))
    return now.value == limit
