// Loaded once into each workflow thread's reusable V8 context and shared by every workflow it
// runs (the SDK's `preloadModules`). Without it each workflow evaluates zod's ~100 modules again
// (~7 CPU-ms of every build's first workflow task). Only zod is shared: the SDK deep-freezes
// shared modules, and a schema built from zod sets its members on itself at first use, so
// schemas/ stays per workflow. zod installs its default locale and memoizer in its global
// config when it builds its first schema: done here, before the freeze.
import { z } from 'zod';

z.object({ ready: z.boolean() }).safeParse({ ready: true });
