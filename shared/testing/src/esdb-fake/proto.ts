import { createRequire } from 'node:module';
import type * as GrpcJs from '@grpc/grpc-js';
import type * as AnyPb from 'google-protobuf/google/protobuf/any_pb';
import type * as EmptyPb from 'google-protobuf/google/protobuf/empty_pb';
import type * as CodePb from '@eventstore/db-client/generated/code_pb';
import type * as ServerFeaturesGrpcPb from '@eventstore/db-client/generated/serverfeatures_grpc_pb';
import type * as ServerFeaturesPb from '@eventstore/db-client/generated/serverfeatures_pb';
import type * as SharedPb from '@eventstore/db-client/generated/shared_pb';
import type * as StatusPb from '@eventstore/db-client/generated/status_pb';
import type * as StreamsGrpcPb from '@eventstore/db-client/generated/streams_grpc_pb';
import type * as StreamsPb from '@eventstore/db-client/generated/streams_pb';

/**
 * The message types and service definitions the fake serves, loaded from the client package's own generated
 * stubs, and `@grpc/grpc-js` (plus `google-protobuf`) as the client package resolves them: the fake and the
 * client then agree on the wire format by construction, and a client upgrade that changes the protocol shows
 * up as a failing test rather than as a fake drifting from it.
 */
const fromHere = createRequire(import.meta.url);
const fromClient = createRequire(fromHere.resolve('@eventstore/db-client/package.json'));

const load = <T>(id: string): T => fromClient(id) as T;

export const grpc = load<typeof GrpcJs>('@grpc/grpc-js');
export const streamsPb = load<typeof StreamsPb>('@eventstore/db-client/generated/streams_pb.js');
export const streamsGrpcPb = load<typeof StreamsGrpcPb>('@eventstore/db-client/generated/streams_grpc_pb.js');
export const sharedPb = load<typeof SharedPb>('@eventstore/db-client/generated/shared_pb.js');
export const statusPb = load<typeof StatusPb>('@eventstore/db-client/generated/status_pb.js');
export const codePb = load<typeof CodePb>('@eventstore/db-client/generated/code_pb.js');
export const serverFeaturesPb = load<typeof ServerFeaturesPb>('@eventstore/db-client/generated/serverfeatures_pb.js');
export const serverFeaturesGrpcPb = load<typeof ServerFeaturesGrpcPb>(
  '@eventstore/db-client/generated/serverfeatures_grpc_pb.js',
);
export const anyPb = load<typeof AnyPb>('google-protobuf/google/protobuf/any_pb.js');
export const emptyPb = load<typeof EmptyPb>('google-protobuf/google/protobuf/empty_pb.js');

export type { GrpcJs, StreamsPb, SharedPb };
