// A form shown again with problems: put the cursor in the first field in error
// (the server marks it aria-invalid, its message named by aria-describedby), so
// the reader starts where the fix is and a screen reader says what is wrong.
const first = document.querySelector("main [aria-invalid=true]");
if (first && !first.closest("[hidden]")) first.focus();
