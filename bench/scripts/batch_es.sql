-- batch of 100, event_store.
SELECT event_store.append_events('batch-' || :run || '-' || :client_id, :v, :batch) AS v \gset
