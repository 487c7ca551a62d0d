-- Schema version 9: each organization's credits per calendar month as running totals, so a
-- charge and the usage page read one row, however many charges the month has had (the sum
-- over `credit_usage` grew with every generation: a soak run's throughput fell by half in
-- ten minutes). `credit_usage` stays the itemized record.
CREATE TABLE credit_totals (
    organization_id    INTEGER NOT NULL REFERENCES organizations (id),
    -- The month's first second (UTC), unix seconds.
    month_start        INTEGER NOT NULL,
    report_generation  INTEGER NOT NULL DEFAULT 0,
    dashboard_refresh  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (organization_id, month_start)
);

INSERT INTO credit_totals (organization_id, month_start, report_generation, dashboard_refresh)
SELECT organization_id,
       CAST(strftime('%s', datetime(at, 'unixepoch', 'start of month')) AS INTEGER),
       COALESCE(SUM(CASE kind WHEN 'report_generation' THEN credits END), 0),
       COALESCE(SUM(CASE kind WHEN 'dashboard_refresh' THEN credits END), 0)
FROM credit_usage
GROUP BY 1, 2;
