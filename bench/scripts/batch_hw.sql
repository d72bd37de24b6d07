-- batch of 100, hand-written.
SELECT bench.hw_append_events('batch-' || :run || '-' || :client_id, :v, :batch) AS v \gset
