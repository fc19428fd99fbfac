-- The plate as the camera saw it, for a review item; see ../migrations/0009_review_images.sql.
CREATE TABLE review_images (
    item_id  BIGINT PRIMARY KEY REFERENCES review_items (id),
    jpeg     BYTEA NOT NULL
);
