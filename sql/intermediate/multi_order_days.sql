-- multi_order_days: the key of every customer-day with more than one order. purchase_days
-- counts and nets these days order by order; every other day, nearly all of them, holds a
-- single order and is that order. As multi_line_orders, a day is found by a 64-bit hash of
-- (customer_id, order_date): two days whose keys hash alike are both listed and still kept
-- apart by their real values in purchase_days.
select key_hash(customer_id, order_date) as day_key
from purchases_clean
group by key_hash(customer_id, order_date)
having count(*) > 1
