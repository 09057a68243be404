// Original file: api/cri.proto


export interface GetEventsRequest {
}

export interface GetEventsRequest__Output {
}
