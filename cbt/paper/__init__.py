"""Paper and hybrid exams: the printed test of each fixed form (mã đề), the
answer sheet (phiếu trả lời), reading scanned sheets, and recording them as
attempts of the same exam (see each module's docstring)."""
