/** Input the API refuses before anything is decided or written. 400: malformed; 422: well-formed but not allowed. */
export class BadRequest extends Error {
  override readonly name = 'BadRequest';
  constructor(
    message: string,
    readonly status: 400 | 404 | 413 | 422 = 400,
  ) {
    super(message);
  }
}
