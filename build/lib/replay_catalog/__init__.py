"""replay-catalog: a GraphQL catalog of Tencent Cloud Live recordings."""
