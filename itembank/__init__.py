"""The item bank: a pure library (no database, no web, no asyncio).

- `model`: Item, ItemSet and their parts, as frozen dataclasses.
- `levels`: the level schemes a bank's items are written in (legacy, 2025).
- `formats.yaml_format`: the native YAML format; `formats.xlsx`: spreadsheets.
- `validate`: every check, each problem with file:line and how to fix it.
- `render`: Markdown + math -> sanitised HTML with MathML.
- `shuffle`: option orders that keep fixed options in place.
- `answers`: how short answers are normalised and matched.
- `keys`: Ed25519 key files; `package`: sign, verify, pack, load releases;
  `archive`: reading folders and zips safely; `seal`: AES-256-GCM sealing.
- `commands`: the ``keys`` and ``bank`` commands; `demo`: the demo banks.
"""
