// Original file: api/sandlot.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { ImportRequest as _sandlot_v1_ImportRequest, ImportRequest__Output as _sandlot_v1_ImportRequest__Output } from '../../sandlot/v1/ImportRequest.js';
import type { ImportResponse as _sandlot_v1_ImportResponse, ImportResponse__Output as _sandlot_v1_ImportResponse__Output } from '../../sandlot/v1/ImportResponse.js';
import type { PullEvent as _sandlot_v1_PullEvent, PullEvent__Output as _sandlot_v1_PullEvent__Output } from '../../sandlot/v1/PullEvent.js';
import type { PullWithProgressRequest as _sandlot_v1_PullWithProgressRequest, PullWithProgressRequest__Output as _sandlot_v1_PullWithProgressRequest__Output } from '../../sandlot/v1/PullWithProgressRequest.js';

export interface ImagesClient extends grpc.Client {
  /**
   * Imports an OCI layout directory, oci-archive or docker-archive tarball at an
   * absolute path on the daemon's host.
   */
  Import(argument: _sandlot_v1_ImportRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_sandlot_v1_ImportResponse__Output>): grpc.ClientUnaryCall;
  Import(argument: _sandlot_v1_ImportRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_sandlot_v1_ImportResponse__Output>): grpc.ClientUnaryCall;
  Import(argument: _sandlot_v1_ImportRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_sandlot_v1_ImportResponse__Output>): grpc.ClientUnaryCall;
  Import(argument: _sandlot_v1_ImportRequest, callback: grpc.requestCallback<_sandlot_v1_ImportResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Imports an OCI layout directory, oci-archive or docker-archive tarball at an
   * absolute path on the daemon's host.
   */
  import(argument: _sandlot_v1_ImportRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_sandlot_v1_ImportResponse__Output>): grpc.ClientUnaryCall;
  import(argument: _sandlot_v1_ImportRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_sandlot_v1_ImportResponse__Output>): grpc.ClientUnaryCall;
  import(argument: _sandlot_v1_ImportRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_sandlot_v1_ImportResponse__Output>): grpc.ClientUnaryCall;
  import(argument: _sandlot_v1_ImportRequest, callback: grpc.requestCallback<_sandlot_v1_ImportResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Pulls like runtime.v1.ImageService/PullImage (same store, same shared download),
   * streaming progress events; the last message carries image_ref.
   */
  PullWithProgress(argument: _sandlot_v1_PullWithProgressRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_sandlot_v1_PullEvent__Output>;
  PullWithProgress(argument: _sandlot_v1_PullWithProgressRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_sandlot_v1_PullEvent__Output>;
  /**
   * Pulls like runtime.v1.ImageService/PullImage (same store, same shared download),
   * streaming progress events; the last message carries image_ref.
   */
  pullWithProgress(argument: _sandlot_v1_PullWithProgressRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_sandlot_v1_PullEvent__Output>;
  pullWithProgress(argument: _sandlot_v1_PullWithProgressRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_sandlot_v1_PullEvent__Output>;
  
}

export interface ImagesHandlers extends grpc.UntypedServiceImplementation {
  /**
   * Imports an OCI layout directory, oci-archive or docker-archive tarball at an
   * absolute path on the daemon's host.
   */
  Import: grpc.handleUnaryCall<_sandlot_v1_ImportRequest__Output, _sandlot_v1_ImportResponse>;
  
  /**
   * Pulls like runtime.v1.ImageService/PullImage (same store, same shared download),
   * streaming progress events; the last message carries image_ref.
   */
  PullWithProgress: grpc.handleServerStreamingCall<_sandlot_v1_PullWithProgressRequest__Output, _sandlot_v1_PullEvent>;
  
}

export interface ImagesDefinition extends grpc.ServiceDefinition {
  Import: MethodDefinition<_sandlot_v1_ImportRequest, _sandlot_v1_ImportResponse, _sandlot_v1_ImportRequest__Output, _sandlot_v1_ImportResponse__Output>
  PullWithProgress: MethodDefinition<_sandlot_v1_PullWithProgressRequest, _sandlot_v1_PullEvent, _sandlot_v1_PullWithProgressRequest__Output, _sandlot_v1_PullEvent__Output>
}
