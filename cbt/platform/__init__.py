"""What every page and command stands on, none of it about exams:

- app, routes: create_app(settings) and the one URL table
- server, config, db, migrations/: the process, its settings, PostgreSQL (embedded or not)
- middleware, auth, inputs, uploads, jsonio: requests in and responses out
- errors, i18n, templating: messages with stable codes, in Vietnamese and English
- appkeys, background, metrics, logs, ops, clientaddr: the parts the above share
"""
