"""The staff pages, one module per area of the workspace:

- staff: the home page, the administrator's account pages, the language switch
- items: writing, reviewing and approving items; subject assignments
- releases: signing a release of approved items and importing releases
- bank_browser: reading the imported bank
- exams: building an exam, its roster, tickets, opening and closing
- results: results, marking essays, downloads
- board: the exam board's item statistics
"""
