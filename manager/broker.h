/* broker.h - BROKER_ERROR events for the cluster link (broker.c). */
#ifndef BIOXEN_BROKER_H
#define BIOXEN_BROKER_H

/* Registers the listeners; 0 also when not clustered. */
int broker_start(void);

#endif
