// Original file: api/cri.proto


export interface ImageFsInfoRequest {
}

export interface ImageFsInfoRequest__Output {
}
