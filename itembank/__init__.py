"""The item bank: a pure library (no database, no web, no asyncio).

- `model`: Item and its parts, as frozen dataclasses.
- `formats.yaml_format`: the native YAML format; `formats.xlsx`: spreadsheets.
- `validate`: every check, each problem with file:line and how to fix it.
- `render`: Markdown + math -> sanitised HTML with MathML.
- `answers`: how short answers are normalised and matched.
- `keys`: Ed25519 key files; `package`: sign, verify, pack, load releases;
  `archive`: reading folders and zips safely; `seal`: AES-256-GCM sealing.
- `commands`: the ``keys`` and ``bank`` commands; `demo`: the demo bank.
"""
