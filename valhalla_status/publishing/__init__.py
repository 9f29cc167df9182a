"""What is published: the JSON documents, their Statuspage view and schemas, headers, metrics,
the TUF signatures and the upload to S3."""
