-- A refund is one refund at the provider: the desk (which made it) and a webhook (which heard of
-- it) may both record it, under their own keys, and only the first record stands.
CREATE UNIQUE INDEX refunds_by_reference ON refunds (reference);
