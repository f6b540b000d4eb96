/**
 * The `workers` group's actor: a process of its own on a worker node, with a
 * cluster connection of its own. It does each Job it is handed and answers
 * whoever sent it (`msg.sender` is `'main@server'`).
 */
import { Actor, ActorManager } from '../../ts/index.js';
import { Answer, Job } from './messages.js';

export default class Worker extends Actor {
  static override subscriptions = [Job];
  private readonly mgr = ActorManager.getSingleton();

  handleJob(job: Job): void {
    let sum = 0;
    for (let i = job.from; i < job.to; i++) sum += i * i;
    this.mgr.queueMessageToGroup(
      String(job.sender),
      new Answer({ id: job.id, sum, by: this.mgr.clusterAddress ?? '?' }),
    );
  }
}
