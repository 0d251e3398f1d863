#!/bin/sh
# Run by docker-compose.yml's `bucket` service at each start, as MinIO's administrator:
# creates the bucket and the app's own user (S3_ACCESS_KEY / S3_SECRET_KEY), which may use
# that bucket and nothing else, so the app never holds the administrator's keys.
# Usage: minio-bucket.sh ENDPOINT (e.g. http://minio:9000). Shell built-ins and mc only:
# the mc image has little else.
set -eu
: "${MINIO_ROOT_USER:?}" "${MINIO_ROOT_PASSWORD:?}" "${S3_ACCESS_KEY:?}" "${S3_SECRET_KEY:?}"
: "${LORAHUB_S3_BUCKET:?}"
if [ "$S3_ACCESS_KEY" = "$MINIO_ROOT_USER" ]; then
    echo "S3_ACCESS_KEY must differ from MINIO_ROOT_USER: the app gets a user of its own" >&2
    exit 1
fi
mc alias set store "$1" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD"
mc mb --ignore-existing "store/$LORAHUB_S3_BUCKET"
policy="${TMPDIR:-/tmp}/lorahub-app-policy.json"
printf '%s\n' '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:*"],' \
    "\"Resource\": [\"arn:aws:s3:::$LORAHUB_S3_BUCKET\", \"arn:aws:s3:::$LORAHUB_S3_BUCKET/*\"]}]}" \
    > "$policy"
# Each step replaces what an earlier start made (a changed secret key takes effect).
mc admin user add store "$S3_ACCESS_KEY" "$S3_SECRET_KEY"
mc admin policy create store lorahub-app "$policy"
if ! mc admin policy attach store lorahub-app --user "$S3_ACCESS_KEY"; then
    # Refused when already attached (an earlier start): fine if it is.
    case "$(mc admin user info store "$S3_ACCESS_KEY")" in
        *lorahub-app*) ;;
        *) exit 1 ;;
    esac
fi
echo "bucket $LORAHUB_S3_BUCKET ready for user $S3_ACCESS_KEY"
