"""Turning sources into chunks: file readers, the chunking ladder, SSRF-safe link fetching.

Pure functions over bytes and text (no models, no database): the collection services call them."""
