// The autosave journal of an attempt: every change the student makes, numbered
// and written to the browser's storage before anything is sent, so that a
// reload or a network drop loses nothing; it leaves the journal only once the
// server has acknowledged it (or refused it for good). No DOM here: functions
// over a storage object (window.localStorage on the page) and an attempt id,
// so that the page and its tests share one implementation.
//
// The storage keys and formats are what pages before this module wrote: a
// journal left by an older page is replayed as it is.

// A batch stays well under the server's request limit (4 MB), however long the essays in it.
export const MAX_BATCH_CHANGES = 200;
export const MAX_BATCH_CHARS = 500000;

export const journalKey = (attemptId) => `cbt.journal.${attemptId}`;
export const seqKey = (attemptId) => `cbt.seq.${attemptId}`;
// Changes the server refused as malformed, kept on this computer (and shown)
// after the page withdrew them from the journal.
export const refusedKey = (attemptId) => `cbt.refused.${attemptId}`;

// A list kept as JSON; whatever else is found there (cut short, written over
// by something else) reads as empty rather than stopping the page.
function readList(storage, key) {
  try {
    const list = JSON.parse(storage.getItem(key) || "[]");
    return Array.isArray(list) ? list.filter((e) => e !== null && typeof e === "object") : [];
  } catch {
    return [];
  }
}

// The changes not yet acknowledged, oldest first.
export function entries(storage, attemptId) {
  return readList(storage, journalKey(attemptId));
}

export function save(storage, attemptId, list) {
  storage.setItem(journalKey(attemptId), JSON.stringify(list));
}

// The highest seq handed out. Unreadable, it is at least the highest seq in
// the journal: a seq is never handed out twice.
export function lastSeq(storage, attemptId) {
  const kept = Number(storage.getItem(seqKey(attemptId)) || 0);
  if (Number.isFinite(kept)) return kept;
  return Math.max(0, ...entries(storage, attemptId).map((e) => e.seq).filter(Number.isFinite));
}

// The next seq; with `atLeast`, no new seq but the counter raised to it (the
// server's saved_seq after a reload on a computer whose journal is gone).
export function nextSeq(storage, attemptId, atLeast) {
  const seq = Math.max(lastSeq(storage, attemptId), atLeast || 0) + (atLeast === undefined ? 1 : 0);
  storage.setItem(seqKey(attemptId), String(seq));
  return seq;
}

// One change, written before anything is sent: a reload keeps it.
export function record(storage, attemptId, item, kind, value) {
  const entry = { seq: nextSeq(storage, attemptId), item, kind, value };
  const list = entries(storage, attemptId);
  list.push(entry);
  save(storage, attemptId, list);
  return entry;
}

// The server saved everything up to `savedSeq`: that leaves the journal.
// Returns what is still to send.
export function acknowledge(storage, attemptId, savedSeq) {
  const left = entries(storage, attemptId).filter((e) => e.seq > savedSeq);
  save(storage, attemptId, left);
  return left;
}

// The changes `refuse` picks can never count (answers to a section that has
// ended): each becomes a withdrawal holding its seq, so that the server's
// saved_seq moves past it at once and the changes after it are not held up,
// and is kept, with why, among the refused ones the page shows.
export function withdrawWhere(storage, attemptId, refuse, err) {
  const kept = refused(storage, attemptId);
  save(storage, attemptId, entries(storage, attemptId).map((e) => {
    if (e.kind === "withdrawn" || !refuse(e)) return e;
    kept.push({ ...e, code: err.code, reason: err.message });
    return { seq: e.seq, item: e.item, kind: "withdrawn", value: null };
  }));
  storage.setItem(refusedKey(attemptId), JSON.stringify(kept));
}

// The first changes of the journal, as many as one request may carry; at
// least one, however long.
export function batchOf(list) {
  const batch = [];
  let chars = 0;
  for (const e of list.slice(0, MAX_BATCH_CHANGES)) {
    chars += JSON.stringify(e).length;
    if (batch.length && chars > MAX_BATCH_CHARS) break;
    batch.push(e);
  }
  return batch;
}

export function refused(storage, attemptId) {
  return readList(storage, refusedKey(attemptId));
}

// The server refused these entries as malformed (it names the change by
// seq; without one, the whole batch): each is kept aside, and replaced in
// the journal by its withdrawal, which holds its seq so that everything
// after it is acknowledged, and changes no answer. `onForm(ref)` says
// whether the item is one of the form's (a withdrawal names only those).
export function withdraw(storage, attemptId, batch, err, onForm) {
  const named = batch.filter((e) => e.seq === err.details.seq);
  const bad = named.length ? named : batch;
  const seqs = new Set(bad.map((e) => e.seq));
  // A withdrawal refused in turn (it should not be) is dropped: nothing of it is left to send.
  const list = entries(storage, attemptId).filter((e) => !(seqs.has(e.seq) && e.kind === "withdrawn"));
  save(storage, attemptId, list.map((e) => (seqs.has(e.seq)
    ? { seq: e.seq, item: onForm(e.item) ? e.item : null, kind: "withdrawn", value: null }
    : e)));
  const kept = refused(storage, attemptId);
  for (const e of bad) if (e.kind !== "withdrawn") kept.push({ ...e, code: err.code, reason: err.message });
  storage.setItem(refusedKey(attemptId), JSON.stringify(kept));
}

// The attempt is handed in: a lab computer serves the next student too, so
// nothing of these answers stays. (The seq counter holds no answer.)
export function forget(storage, attemptId) {
  storage.removeItem(journalKey(attemptId));
  storage.removeItem(refusedKey(attemptId));
}
