/** The cluster example's messages: a job (a range of numbers) and its answer (the sum of their squares). */
import { defineMessage } from '../../ts/index.js';

export const Job = defineMessage('Job', { id: 'I', from: 'I', to: 'I' }, { packetType: 180 });
export type Job = InstanceType<typeof Job>;

export const Answer = defineMessage('Answer', { id: 'I', sum: 'd', by: 'p' }, { packetType: 181 });
export type Answer = InstanceType<typeof Answer>;
