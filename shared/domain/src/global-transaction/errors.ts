/**
 * A command the current state does not allow. `code` says which answer the API gives:
 * `conflict` → 409 FAILURE (DTM clients read it as a business "no"), `not-found` → 404,
 * `invalid` → 422.
 */
export class TxRejected extends Error {
  override readonly name = 'TxRejected';
  constructor(
    readonly code: 'conflict' | 'not-found' | 'invalid',
    message: string,
  ) {
    super(message);
  }
}
