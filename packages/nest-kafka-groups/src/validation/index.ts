export { CompiledValidationPipe } from './compiled-validation.pipe.js';
