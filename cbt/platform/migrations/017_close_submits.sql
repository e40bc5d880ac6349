-- Closing an exam submits the attempts still in progress, as they are then.
ALTER TABLE attempts DROP CONSTRAINT attempts_submitted_by_check;
ALTER TABLE attempts ADD CONSTRAINT attempts_submitted_by_check
    CHECK (submitted_by IN ('candidate', 'deadline', 'proctor', 'close'));
