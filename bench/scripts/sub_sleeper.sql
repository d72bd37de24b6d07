-- a session in a 5-second statement that is not a wait (bench/subscriptions.sh):
-- the reference for what any statement that runs that long costs the writers
-- beside it, whatever it does.
SELECT pg_sleep(5);
