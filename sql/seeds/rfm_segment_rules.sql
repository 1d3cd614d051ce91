-- rfm_segment_rules: which RFM cells make which named segment. Edit freely: the first rule
-- (lowest priority number) whose score ranges hold a customer's scores names the segment.
-- Every one of the 125 cells must match some rule (rfm's accepted_values test checks it).
select * from (
    values
        (1,  'Champions',          4, 5, 4, 5, 4, 5),
        (2,  'Can''t Lose Them',   1, 2, 4, 5, 4, 5),
        (3,  'Loyal',              3, 5, 4, 5, 1, 5),
        (4,  'At Risk',            1, 2, 3, 5, 1, 5),
        (5,  'Potential Loyalist', 4, 5, 2, 3, 1, 5),
        (6,  'New',                5, 5, 1, 1, 1, 5),
        (7,  'Promising',          4, 4, 1, 1, 1, 5),
        (8,  'Need Attention',     3, 3, 2, 3, 1, 5),
        (9,  'About to Sleep',     3, 3, 1, 1, 1, 5),
        (10, 'Hibernating',        2, 2, 1, 2, 1, 5),
        (11, 'Lost',               1, 1, 1, 2, 1, 5)
) as rules (priority, segment, r_min, r_max, f_min, f_max, m_min, m_max)
