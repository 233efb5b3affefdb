// The AWS SDK's S3 client and the commands the S3 store sends, in one module that s3.ts imports only when a request
// needs the SDK. Why: the SDK is ~350 KB of bundled code, ~25 ms to load at every start, and a fetch from an
// S3-compatible endpoint with credentials in the environment sends no request through it (signed.ts).
export {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
} from "@aws-sdk/client-s3";
