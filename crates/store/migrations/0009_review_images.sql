-- The plate as the camera saw it, for a review item a gate frame raised: a small JPEG crop that
-- the operator looks at before deciding. The PostgreSQL twin is migrations-postgres/0008_review_images.sql.
CREATE TABLE review_images (
    item_id  INTEGER PRIMARY KEY REFERENCES review_items (id),
    jpeg     BLOB NOT NULL
);
