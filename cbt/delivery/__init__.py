"""The exam day's hot path, what candidates and proctors touch while an exam runs:

- candidate: the candidate API (/api/v1): ticket login, start, state, sections, submit, SEB checks
- autosave: answer changes, saved in batches with their journal sequence
- proctor: the proctor's console, its live stream and its actions
- exam_page: the exam page and the login page candidates open
- receipt_pages: the public pages that check a receipt
- apidoc: the candidate API's description (OpenAPI)
"""
