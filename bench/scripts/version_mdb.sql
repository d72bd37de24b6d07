-- stream version of one of 1,000 streams, Message DB (needs message_store on
-- the search_path; run.sh sets it for the message-db methods).
\set s random(1, 1000)
SELECT message_store.stream_version('ver-' || :s);
