"""Declarative base whose naming convention reproduces PostgreSQL's own default names.

Revision 732e0cd9a870 created its constraints with PostgreSQL's defaults (`nodes_pkey`,
`nodes_parent_id_fkey`, ...); those names are part of the compatibility contract, so the models
generate exactly them.
"""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "%(table_name)s_%(column_0_N_name)s_key",
    "ck": "%(constraint_name)s",
    "fk": "%(table_name)s_%(column_0_name)s_fkey",
    "pk": "%(table_name)s_pkey",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
