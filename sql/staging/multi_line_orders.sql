-- multi_line_orders: the key of every order with more than one line (several items, a
-- purchase and its refund). purchases_clean nets these orders line by line; every other
-- order, most of them, is a single line and passes through as it is.
-- An order is found by a 64-bit hash of (order_id, customer_id), not by the two texts:
-- grouping ten million lines by one number takes a fraction of the time and memory. Two
-- different orders whose keys hash alike are both listed here and are still netted
-- separately, by their real ids, in purchases_clean: a collision costs time, never a result.
select key_hash(order_id, customer_id) as order_key
from purchases
where order_id is not null
group by key_hash(order_id, customer_id)
having count(*) > 1
