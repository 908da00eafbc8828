"""Error types raised by `vau.assets`; every message says what to do next."""

from __future__ import annotations


class AssetError(Exception):
    """Base class for every failure while obtaining, converting or checking an asset."""


class AssetMissingError(AssetError):
    """An asset is not in the cache (or the manifest does not list it)."""


class UnknownAssetError(AssetError, ValueError):
    """A name that is neither an asset nor a group in the catalogue."""


class RegistryError(AssetError):
    """A package registry (pip index, apt archive) could not deliver a package."""


class AssetCorruptError(AssetError):
    """A cached file no longer matches the checksum recorded in the manifest."""


class ConversionError(AssetError):
    """A downloaded artefact could not be converted, or its parity check failed."""
