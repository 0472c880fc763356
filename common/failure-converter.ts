// Loaded by path (DataConverter.failureConverterPath) into workers, clients and the workflow
// bundle: failure messages and stack traces go into encodedAttributes, a payload, so the codec
// encrypts them too (a failing step's message may quote a secret).
import { DefaultFailureConverter } from '@temporalio/common';

export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
