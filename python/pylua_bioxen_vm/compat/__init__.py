"""Faces for code written against other sandboxing libraries.

Each module maps one library's API onto VMManager: luaward.py is LuaWard's
``IsolatedLuaVM``.  A face re-exported at the top of the package
(``pylua_bioxen_vm.IsolatedLuaVM``) keeps its implementation here.
"""

from .luaward import IsolatedLuaVM

__all__ = ["IsolatedLuaVM"]
