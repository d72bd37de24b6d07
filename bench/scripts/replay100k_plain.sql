-- replay of a 100,000-event stream, plain SELECT of the same rows.
SELECT global_position, stream_id, version, event_id, event_type, data, metadata, created_at
  FROM event_store.events WHERE stream_id = 'replay-100k' ORDER BY version;
