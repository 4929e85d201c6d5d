"""Fixtures of the web UI tests: the browser tests' served lake and headless Chromium."""

from tests.mixlake.web.browser import browser, served

__all__ = ["browser", "served"]
