-- reason_codes: why a customer left, one row per reason code. Edit freely. A code is what
-- a customer states (the `feedback` source's reason_code: a survey answer, a reply read
-- by the team) or what winback infers from the evidence (a complaint kind, a refund, or
-- no_company_signal when nothing points at us).
--   owner        whose reason it is (seed 002):
--                  company     we let them down (product, delivery, service, price)
--                  customer    their own reason, nothing more known
--                  competitor  lured away by a competitor
--                  objective   their needs ended: moved away, no longer needs it
--                  abusive     bad faith: fraud, abuse of returns or offers
--                The value x reason matrix (sql/intermediate/treatment_matrix.sql) turns
--                the owner and the customer's value into a treatment: company ->
--                make_amends (high value) or opportunistic (low); customer -> win_back or
--                let_go; competitor -> win_back or opportunistic (a win-back offer);
--                objective and abusive -> let_go whatever the value.
--   treatment    NULL: the matrix decides as above; a treatment here (make_amends,
--                win_back, opportunistic, let_go) applies to this code whatever the
--                customer's value.
--   label        the reason in plain words, for people (winback_treatment's `why`).
--   reason_text  how a message may word it ("We noticed {{ reason_text }}").
-- A stated code missing here is not used: the lapse keeps its inferred reason. Add it.
select * from (
    values
        -- stated by the customer
        ('late_delivery',     'company',    cast(null as varchar), 'late delivery',                'the delay on your last delivery'),
        ('poor_quality',      'company',    null,                  'poor product quality',          'that what you received was not up to standard'),
        ('rude_service',      'company',    null,                  'rude or unhelpful service',     'how our team treated you'),
        ('wrong_item',        'company',    null,                  'wrong or damaged item',         'that your order arrived wrong or damaged'),
        ('price',             'company',    null,                  'our prices are too high',       'that our prices put you off'),
        ('website_problem',   'company',    null,                  'trouble with the website or app', 'the trouble you had ordering from us'),
        ('found_cheaper',     'competitor', null,                  'found it cheaper elsewhere',    'that you found a better price elsewhere'),
        ('switched_brand',    'competitor', null,                  'switched to another shop',      'that you tried another shop'),
        ('moved_away',        'objective',  'let_go',              'moved away',                    'your move'),
        ('no_longer_needed',  'objective',  'let_go',              'no longer needs it',            'that your needs have changed'),
        ('abusive',           'abusive',    'let_go',              'abusive or bad faith',          'your last experience with us'),
        ('other',             'customer',   null,                  'another reason of their own',   'your last experience with us'),
        -- inferred by winback (sql/marts/lapse_reasons.sql)
        ('complaint',         'company',    null,                  'complained',                    'your complaint'),
        ('service_ticket',    'company',    null,                  'opened a service ticket',       'your recent request to our service team'),
        ('bad_review',        'company',    null,                  'wrote a bad review',            'your review'),
        ('refund_request',    'company',    null,                  'asked for a refund',            'your refund request'),
        ('refund',            'company',    null,                  'sent an order back',            'the order you sent back'),
        ('no_company_signal', 'customer',   null,                  'nothing points at us',          'your last experience with us')
) as codes (reason_code, owner, treatment, label, reason_text)
